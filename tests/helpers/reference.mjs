// Independent implementations of our identifiers, from npm: ipfs-unixfs-importer configured
// as `ipfs add --cid-version=1` (raw leaves, 256 KiB fixed chunks, balanced DAG of 174 links)
// and @web3-storage/data-segment for CommP / piece CID v2.
//
// CLI: `node tests/helpers/reference.mjs FILE` prints the identifiers of FILE as JSON
// (used by the Rust test on a >100 MiB input).
import { readFile } from 'node:fs/promises'
import { pathToFileURL } from 'node:url'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { Piece } from '@web3-storage/data-segment'

// Only the root CID matters: blocks are dropped instead of stored.
const discard = {
  put: async (cid) => cid,
  has: async () => false,
  get: async () => {
    throw new Error('not stored')
  },
}

/** The importer's options that reproduce `ipfs add --cid-version=1`. */
export const IPFS_ADD_V1 = {
  cidVersion: 1,
  rawLeaves: true,
  reduceSingleLeafToSelf: true,
  chunker: fixedSize({ chunkSize: 262144 }),
  layout: balanced({ maxChildrenPerNode: 174 }),
}

/** UnixFS root CID as `ipfs add --cid-version=1` computes it. */
export async function referenceUnixfsCid(bytes) {
  let root
  for await (const entry of importer([{ content: bytes }], discard, IPFS_ADD_V1)) root = entry.cid
  return root.toString()
}

/** CommP (v1), piece CID v2 and padded size. */
export function referencePiece(bytes) {
  const piece = Piece.fromPayload(bytes)
  const info = Piece.toInfo(piece)
  return { pieceCid: piece.link.toString(), commP: info.link.toString(), pieceSize: Number(info.size) }
}

/** All identifiers, in the shape `computeCids` returns. */
export async function referenceCids(bytes) {
  return { cid: await referenceUnixfsCid(bytes), ...referencePiece(bytes), size: bytes.length }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const bytes = await readFile(process.argv[2])
  console.log(JSON.stringify(await referenceCids(bytes)))
}
