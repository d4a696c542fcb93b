// Identifiers of a file from a Node backend, hashed off the event loop.
//   node examples/node/identify.mjs FILE
import { createRequire } from 'node:module'
const { computeCidsFromFile } = createRequire(import.meta.url)('raas-node')

const path = process.argv[2]
if (!path) {
  console.error('usage: node examples/node/identify.mjs FILE')
  process.exit(2)
}
try {
  console.log(await computeCidsFromFile(path))
} catch (e) {
  console.error(`error [${e.code}]: ${e.message}`)
  process.exit(1)
}
