// Identifiers of data, checked against independent npm implementations on edge sizes.
// Runs against the napi addon (BACKEND=node) and the wasm package in Node (BACKEND=wasm).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { randomBytes, EDGE_SIZES } from './helpers/data.mjs'
import { cachedReference } from './helpers/cache.mjs'

const require = createRequire(import.meta.url)
const { backend, raas } = require('./helpers/backend.cjs')

/** computeCids is sync in Node and returns a Promise in the browser package: await both. */
const compute = async (input) => await raas.computeCids(input)

test(`[${backend}] computeCids equals the reference implementations on edge sizes`, async (t) => {
  for (const size of EDGE_SIZES) {
    await t.test(`${size} bytes`, async () => {
      const bytes = randomBytes(size, size + 7)
      const expected = await cachedReference(`${size}:${size + 7}`, bytes)
      assert.deepEqual(await compute(bytes), expected)
      const { cid, ...piece } = expected
      assert.deepEqual(raas.computePieceCid(bytes), piece)
      assert.equal(raas.computeUnixfsCid(bytes), cid)
    })
  }
})

test(`[${backend}] FRC-0069 vectors`, async () => {
  const four = new Uint8Array(4 * 127)
  for (let b = 0; b < 4; b++) four.fill(b, b * 127, (b + 1) * 127)
  const cases = [
    [four, 'baga6ea4seaqes3nobte6ezpp4wqan2age2s5yxcatzotcvobhgcmv5wi2xh5mbi',
      'bafkzcibcaaces3nobte6ezpp4wqan2age2s5yxcatzotcvobhgcmv5wi2xh5mbi', 512],
    [new Uint8Array(0), 'baga6ea4seaqdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy',
      'bafkzcibcp4bdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy', 128],
    [new Uint8Array(2032), 'baga6ea4seaqpy7usqklokfx2vxuynmupslkeutzexe2uqurdg5vhtebhxqmpqmy',
      'bafkzcibcaadpy7usqklokfx2vxuynmupslkeutzexe2uqurdg5vhtebhxqmpqmy', 2048],
    [new TextEncoder().encode('hello world\n'),
      'baga6ea4seaqdnumj2qy2m33n4gq3aizapmnpfim5s5s7tufhjfaij7lolfogqdq',
      'bafkzcibcombdnumj2qy2m33n4gq3aizapmnpfim5s5s7tufhjfaij7lolfogqdq', 128],
  ]
  for (const [bytes, commP, pieceCid, pieceSize] of cases) {
    const ids = await compute(bytes)
    assert.equal(ids.commP, commP)
    assert.equal(ids.pieceCid, pieceCid)
    assert.equal(ids.pieceSize, pieceSize)
    assert.equal(ids.size, bytes.length)
  }
})

test(`[${backend}] CidHasher gives the same result fed in odd-sized chunks`, async () => {
  const bytes = randomBytes(700_001, 3)
  const h = new raas.CidHasher()
  for (let i = 0; i < bytes.length; i += 99_991) h.update(bytes.subarray(i, i + 99_991))
  assert.equal(h.bytesHashed, bytes.length)
  assert.deepEqual(h.finish(), await compute(bytes))
  assert.throws(() => h.finish(), (e) => e.code === 'INVALID_STATE')
  assert.throws(() => h.update(new Uint8Array(1)), (e) => e.code === 'INVALID_STATE')
})

test(`[${backend}] parseCid normalises and rejects with INVALID_CID`, () => {
  const v0 = raas.parseCid('QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n')
  assert.deepEqual(v0, {
    cid: 'bafybeihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku',
    version: 0, codec: 0x70, multihashCode: 0x12, digestSize: 32,
  })
  const upper = raas.parseCid('BAFKREIHDWDCEFGH4DQKJV67UZCMW7OJEE6XEDZDETOJUZJEVTENXQUVYKU')
  assert.equal(upper.cid, 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku')
  for (const bad of ['', 'not a cid', 'bafkreihdwdcefgh4dqkjv67uzcmw7oj', ' Qm']) {
    assert.throws(() => raas.parseCid(bad), (e) => {
      assert.equal(e.code, 'INVALID_CID')
      assert.ok(e instanceof Error)
      assert.match(e.message, /invalid CID/)
      return true
    })
  }
})

// Written by `multiformats` (js-multiformats, what Helia and w3up use): every CIDv1 spelled in
// base32, base58btc, base36 and base16 reads back as the same CID; the other bases are refused
// with INVALID_CID and a reason naming the accepted ones; a CIDv0 string reads as its CIDv1.
test(`[${backend}] parseCid reads CIDs as multiformats writes them, in the accepted bases`, async () => {
  const { CID } = await import('multiformats/cid')
  const { sha256 } = await import('multiformats/hashes/sha2')
  const bases = {
    ...(await import('multiformats/bases/base32')), ...(await import('multiformats/bases/base58')),
    ...(await import('multiformats/bases/base36')), ...(await import('multiformats/bases/base16')),
    ...(await import('multiformats/bases/base64')), ...(await import('multiformats/bases/base2')),
    ...(await import('multiformats/bases/base10')), ...(await import('multiformats/bases/base8')),
    ...(await import('multiformats/bases/base256emoji')),
  }
  const accepted = ['base32', 'base32upper', 'base58btc', 'base36', 'base36upper', 'base16', 'base16upper']
  let checked = 0
  for (let i = 0; i < 40; i++) {
    const digest = await sha256.digest(randomBytes(i * 13, i))
    for (const codec of [0x55, 0x70, 0x71, 0x0129]) {
      const cid = CID.createV1(codec, digest)
      const canonical = cid.toString()
      for (const [name, base] of Object.entries(bases)) {
        if (!base.encoder) continue
        const text = cid.toString(base.encoder)
        if (accepted.includes(name)) {
          assert.equal(raas.parseCid(text).cid, canonical, `${name}: ${text}`)
          checked++
        } else {
          assert.throws(() => raas.parseCid(text), (e) => e.code === 'INVALID_CID' && /not accepted/.test(e.message), `${name}: ${text}`)
        }
      }
      if (codec === 0x70) {
        const v0 = CID.createV0(digest)
        const info = raas.parseCid(v0.toString())
        assert.equal(info.cid, v0.toV1().toString())
        assert.equal(info.version, 0)
      }
    }
  }
  assert.equal(checked, 40 * 4 * accepted.length)
  // One CID, one spelling per base: a stray trailing bit or mixed letter case is refused.
  const cid = CID.createV1(0x55, await sha256.digest(new Uint8Array(3))).toString()
  const last = 'abcdefghijklmnopqrstuvwxyz234567'.indexOf(cid.at(-1))
  const noisy = cid.slice(0, -1) + 'abcdefghijklmnopqrstuvwxyz234567'[last | 1]
  assert.notEqual(noisy, cid)
  assert.throws(() => raas.parseCid(noisy), (e) => e.code === 'INVALID_CID')
  assert.throws(() => raas.parseCid('b' + cid.slice(1).toUpperCase()), (e) => e.code === 'INVALID_CID')
})

if (backend === 'node') {
  test('[node] computeCidsFromFile streams a file off the JS thread', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'raas-'))
    try {
      const bytes = randomBytes(5 * 1024 * 1024 + 3, 11)
      const path = join(dir, 'payload.bin')
      await writeFile(path, bytes)
      const ids = await raas.computeCidsFromFile(path)
      assert.deepEqual(ids, await cachedReference('file:5242883:11', bytes))
      await assert.rejects(raas.computeCidsFromFile(join(dir, 'missing.bin')), (e) => {
        assert.equal(e.code, 'IO')
        assert.match(e.message, /missing\.bin/)
        return true
      })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
}

if (backend === 'wasm') {
  test('[wasm] computeCids reads a Blob as a stream and reports progress', async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 5, 21)
    const seen = []
    const ids = await raas.computeCids(new Blob([bytes.subarray(0, 1000), bytes.subarray(1000)]),
      (n) => seen.push(n))
    assert.deepEqual(ids, await compute(bytes))
    assert.ok(seen.length >= 2, 'progress reported per chunk')
    assert.equal(seen.at(-1), bytes.length)
    assert.ok(seen.every((n, i) => i === 0 || n >= seen[i - 1]))
    await assert.rejects(raas.computeCids('text'), (e) => e.code === 'INVALID_ARGUMENT')
  })
}
