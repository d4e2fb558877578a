import { z } from 'zod'
import { IntFromText } from '../util/schemas'

/** A whole number given as text (query strings), checked against a range. */
export const wholeNumber = (min: number, max: number) => IntFromText().pipe(z.int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`))
