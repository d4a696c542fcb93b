'use strict'
// `node.handler()`: a `(req, res)` function for `node:http`, Express or Fastify that hands each
// request to the node's router in the core (`handleHttp`). Transport only: no route logic here.

/** @param {import('./index').RaasNode} node */
function createHandler(node) {
  const limit = node.httpBodyLimit
  return function raasHandler(req, res, next) {
    const chunks = []
    let size = 0
    let over = false
    req.on('data', (c) => {
      if (over) return
      size += c.length
      // Past the limit the rest is not kept: the router answers 413 from the first limit+1 bytes.
      if (size > limit) {
        over = true
        chunks.push(c.subarray(0, c.length - (size - limit - 1)))
      } else chunks.push(c)
    })
    req.on('error', (e) => (next ? next(e) : res.destroy(e)))
    req.on('end', () => {
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
