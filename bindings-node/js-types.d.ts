/* ---- Added in JS (bindings-node/main.js) -------------------------------------------------- */
/* The only hand-kept part of this header (bindings-node/js-types.d.ts, appended verbatim):
   what main.js adds on top of the native binding has no Rust type to generate it from. */

/** A request handed to an `onDealRequest` hook (merged with its generated declaration above). */
export interface DealRequest {
  /**
   * The request's data, verified against `cid`, from the node's `gateways` (the node's
   * `retrieve(cid)`): what a hook hands to new deals. Added in JS; not enumerable.
   */
  data(options?: { onProgress?: (bytesReleased: number) => void }): Promise<import('node:stream').Readable>
}

/** Added to the class in JS (`main.js`): merged with its declaration below. */
export interface RaasNode {
  /**
   * Retrieves the file at `cid` from the node's `gateways`, verified block by block, as a
   * `Readable`; the same errors as the package's `retrieve`.
   */
  retrieve(cid: string, options?: { onProgress?: (bytesReleased: number) => void }): Promise<import('node:stream').Readable>
  /**
   * Uploads a file into the node's block store (a Buffer / Uint8Array, a `Readable` or an
   * async iterable of chunks) and pins it; resolves its identifiers, as `computeCids` gives
   * them. A failed or cut-off upload leaves nothing behind. Added in JS.
   */
  upload(data: Uint8Array | AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string>): Promise<{ cid: string, pieceCid: string, commP: string, pieceSize: number, size: number }>
  /**
   * A `(req, res, next?)` function that serves this node's HTTP API inside a host's own
   * server: `app.use('/raas', node.handler())` in Express, or `http.createServer(node.handler())`.
   * Every route, limit and error is the core's (the same router as `serve()`).
   */
  handler(): (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse, next?: (err?: unknown) => void) => void
}
