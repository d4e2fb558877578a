import { resolve } from 'node:path'
import type { AnyElysia } from 'elysia'

/** Makes the routes a test adds to the app; called once per app built (each start, each in-place restart). */
export type TestPlugin = () => AnyElysia

/**
 * XOPCBOT_TEST_PLUGIN=<path to a module>, test-only: the end-to-end tests add routes of their own (e.g. a slow
 * request, to hold a drain open) to a gateway run from source. The module's default export is a TestPlugin.
 * The routes live with the tests, so the product ships none of them; unset, nothing is imported.
 */
export async function loadTestPlugin(path: string | undefined): Promise<TestPlugin | null> {
  if (!path) return null
  const module = (await import(resolve(path))) as { default?: unknown }
  if (typeof module.default !== 'function') throw new Error(`XOPCBOT_TEST_PLUGIN: ${path} has no default export that makes an Elysia plugin`)
  return module.default as TestPlugin
}
