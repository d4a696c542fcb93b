// Hashes the picked file off the main thread with raas-web: the page never freezes, even for
// a file of many gigabytes (it is read as a stream, never held whole).
import init, { computeCids } from '/bindings-wasm/pkg/web/raas_wasm.js'

const ready = init()
self.onmessage = async ({ data: { file, generation } }) => {
  await ready
  try {
    let last = 0
    const cids = await computeCids(file, (n) => {
      // A message per percent is enough for a smooth bar.
      if (n - last >= file.size / 100 || n === file.size) { last = n; self.postMessage({ generation, progress: file.size ? n / file.size : 1 }) }
    })
    self.postMessage({ generation, cids })
  } catch (e) {
    self.postMessage({ generation, error: { code: e.code, message: e.message } })
  }
}
