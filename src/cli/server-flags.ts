import { Host, PortFromText, Token } from '../config/schema'
import { flag } from './args'

/** The flags checked by the config schema's own rules (see flag() in args.ts for why they are apart). */
export const PortFlag = flag(PortFromText)
export const HostFlag = flag(Host)
export const TokenFlag = flag(Token)
