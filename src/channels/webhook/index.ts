export { WebhookSender } from './sender'
export {
  checkSignature,
  EVENT_ID_HEADER,
  eventIdOf,
  sign,
  SIGNATURE_HEADER,
  signatureHeaders,
  TIMESTAMP_HEADER,
  TIMESTAMP_TOLERANCE_SECONDS,
  verifySignature,
  WebhookEvent,
} from './signature'
export { WebhookSource, type WebhookSourceDeps } from './source'
