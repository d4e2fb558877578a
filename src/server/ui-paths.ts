/** Where the Control UI is served (src/server/ui.ts): the page at `/`, its assets under `/ui/`. Public paths. */
export const UI_PREFIX = '/ui/'
export const isUiPath = (path: string) => path === '/' || path.startsWith(UI_PREFIX)
