'use strict'
// `node.handler()`: a `(req, res)` function for `node:http`, Express or Fastify that hands each
// request to the node's router in the core (`handleHttp`). Transport only: no route logic here.

/** @param {import('./index').RaasNode} node */
function createHandler(node) {
  const limit = node.httpBodyLimit
  return function raasHandler(req, res, next) {
    const chunks = []
    let size = 0
    req.on('data', (c) => {
      size += c.length
      // Past the limit nothing more is kept: the request is answered 413 below.
      if (size <= limit) chunks.push(c)
    })
    req.on('error', (e) => (next ? next(e) : res.destroy(e)))
    req.on('end', () => {
      if (size > limit) {
        // Answered here, for every route: a cut body must never reach a route that would
        // take it as whole (an upload would store the first bytes under the wrong CID).
        // Bodies over the limit (large uploads) go to `node.serve()`, which streams them.
        res.statusCode = 413
        res.setHeader('content-type', 'application/json')
        return res.end(JSON.stringify({ error: { code: 'PAYLOAD_TOO_LARGE',
          message: `the body is larger than the limit (${limit} bytes through node.handler(); node.serve() streams uploads)` } }))
      }
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
