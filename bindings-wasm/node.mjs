// Node ESM entry of raas-web: the same exports as the browser build, from the Node build of
// the wasm module, which loads synchronously; `init()` (default export) resolves at once and
// `initSync()` returns at once, kept for code shared with the browser build (`await init()`
// and `initSync({ module })` work in both; their argument is ignored here).
import { createRequire } from 'node:module'

export * from './pkg/node/raas_wasm.js'

const wasm = createRequire(import.meta.url)('./pkg/node/raas_wasm.js')

/** Resolves to the module; nothing to load in Node. */
export default async function init() {
  return wasm
}
export { init }

/** Returns the module; nothing to load in Node (the browser build's `initSync` compiles). */
export function initSync() {
  return wasm
}
