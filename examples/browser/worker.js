// Hashes the picked file off the main thread with raas-web.
import init, { computeCids } from '/bindings-wasm/pkg/web/raas_wasm.js'

const ready = init()
self.onmessage = async ({ data: file }) => {
  await ready
  try {
    const cids = await computeCids(file, (n) => self.postMessage({ progress: n / file.size }))
    self.postMessage({ cids })
  } catch (e) {
    self.postMessage({ error: { code: e.code, message: e.message } })
  }
}
