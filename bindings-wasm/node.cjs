// Node entry of raas-web: the wasm module is loaded synchronously, so `init()` is a no-op
// kept for code shared with the browser build (`await init()` works in both).
'use strict'
const wasm = require('./pkg/node/raas_wasm.js')

module.exports = { ...wasm, default: async () => wasm, init: async () => wasm }
