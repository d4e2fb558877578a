/**
 * The local control protocol between the CLI and a running gateway (`POST /_control/<action>` on loopback),
 * shared by both sides: the header that carries the lock's nonce.
 */
export const NONCE_HEADER = 'x-xopcbot-nonce'
