'use strict'
// `node.handler()`: a `(req, res)` function for `node:http`, Express or Fastify that hands each
// request to the node's router in the core (`handleHttp`). Transport only: no route logic here.

/** Bytes of a refused body read (and dropped) before the connection is cut. */
const DRAIN_MAX = 64 * 1024 * 1024

/** @param {import('./index').RaasNode} node */
function createHandler(node) {
  const limit = node.httpBodyLimit
  return function raasHandler(req, res, next) {
    const chunks = []
    let size = 0
    let refused = false
    // A body over the limit is refused whole, answered here for every route: a cut body must
    // never reach a route that would take it as whole (an upload would store the first bytes
    // under the wrong CID). Large uploads go to `node.serve()`, which streams them.
    const refuse = () => {
      refused = true
      res.statusCode = 413
      res.setHeader('content-type', 'application/json')
      res.setHeader('connection', 'close')
      res.end(JSON.stringify({ error: { code: 'PAYLOAD_TOO_LARGE',
        message: `the body is larger than the limit (${limit} bytes through node.handler(); node.serve() streams uploads)` } }))
    }
    if (Number(req.headers['content-length']) > limit) refuse()
    req.on('data', (c) => {
      size += c.length
      if (size <= limit && !refused) return chunks.push(c)
      if (!refused) refuse()
      // The rest is read and dropped, so the client sees the answer; a body that does not
      // end is cut off.
      if (size > DRAIN_MAX) req.destroy()
    })
    req.on('error', (e) => (refused ? undefined : next ? next(e) : res.destroy(e)))
    req.on('end', () => {
      if (refused) return
      const headers = []
      for (let i = 0; i < req.rawHeaders.length; i += 2) headers.push([req.rawHeaders[i], req.rawHeaders[i + 1]])
      // Mounted with `app.use('/raas', …)`, Express gives the path below the mount in `req.url`.
      node.handleHttp(req.method, req.url || '/', headers, Buffer.concat(chunks)).then((r) => {
        res.statusCode = r.status
        for (const [k, v] of r.headers) res.setHeader(k, v)
        res.end(r.body)
      }, (e) => (next ? next(e) : (res.statusCode = 500, res.end())))
    })
  }
}

module.exports = { createHandler }
