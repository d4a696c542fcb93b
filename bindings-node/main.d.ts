// The package's types: the generated declarations of the native binding (`index.d.ts`)
// plus what `main.js` adds in JS.
export * from './index'
import type { RetrieveOptions } from './index'

/**
 * Retrieves the file at `cid` from `options.gateways`, verified block by block against the
 * CID, as a `Readable` (an async iterator of Buffers). Rejects with `err.code` `NOT_FOUND`,
 * `INTEGRITY`, `INCOMPLETE`, `TOO_LARGE`, `TIMEOUT`, `INVALID_CID`, …; a failure after the
 * first bytes errors the stream with the same codes. Added in JS (`main.js`).
 */
export declare function retrieve(
  cid: string,
  options?: RetrieveOptions & { onProgress?: (bytesReleased: number) => void },
): Promise<import('node:stream').Readable>
