// Node ESM entry of raas-web: the same exports as the browser build, from the Node build of
// the wasm module, which loads synchronously; `init()` (default export) resolves at once, kept
// for code shared with the browser build (`await init()` works in both).
import { createRequire } from 'node:module'

export * from './pkg/node/raas_wasm.js'

const wasm = createRequire(import.meta.url)('./pkg/node/raas_wasm.js')

/** Resolves to the module; nothing to load in Node. */
export default async function init() {
  return wasm
}
export { init }
