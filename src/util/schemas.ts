import { z } from 'zod'

/**
 * A whole number given as text (a flag, an environment variable, a query string) turned into a number; pipe it
 * into the range check. `message` is the error for text that is not digits alone.
 */
export const IntFromText = (message = 'must be a whole number') => z.string().regex(/^\d+$/, message).transform(Number)
