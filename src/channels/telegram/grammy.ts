/** grammY, loaded with the first Telegram channel that is used (a gateway without one never loads it). */
let grammy: typeof import('grammy') | null = null

export async function loadGrammy(): Promise<typeof import('grammy')> {
  grammy ??= await import('grammy')
  return grammy
}

/** grammY once it is loaded, else null (nothing can have come from it yet). */
export const loadedGrammy = () => grammy

export const isGrammyError = (error: unknown): error is import('grammy').GrammyError => !!grammy && error instanceof grammy.GrammyError

export function describe(error: unknown): string {
  if (isGrammyError(error)) return `Telegram error ${error.error_code}: ${error.description}`
  if (grammy && error instanceof grammy.HttpError) return `network error talking to Telegram: ${(error.error as Error)?.message ?? error.message}`
  return error instanceof Error ? error.message : String(error)
}
