// Node entry of raas-web: the wasm module is loaded synchronously, so `init()` and
// `initSync()` are no-ops kept for code shared with the browser build (`await init()` and
// `initSync({ module })` work in both; their argument is not needed here and is ignored).
'use strict'
const wasm = require('./pkg/node/raas_wasm.js')

module.exports = { ...wasm, default: async () => wasm, init: async () => wasm, initSync: () => wasm }
