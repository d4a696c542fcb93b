// Picks the binding under test: BACKEND=node (the napi addon, default) or BACKEND=wasm (the
// browser package's Node build). One behavioural suite runs against both.
'use strict'

const backend = process.env.BACKEND ?? 'node'

function load() {
  if (backend === 'node') return require('raas-node')
  if (backend === 'wasm') return require('raas-web')
  throw new Error(`unknown BACKEND ${backend} (use node or wasm)`)
}

module.exports = { backend, raas: load() }
