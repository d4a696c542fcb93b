// The browser package's verified retrieval in headless Chromium: from the page, across
// origins, against the local trustless gateway and its tampering variant, with progress.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from '../helpers/data.mjs'
import { startGateway } from '../helpers/gateway.mjs'
import { startServer, openPage } from '../helpers/browser.mjs'

const CHUNK = 262144
let dir, gateway, server, browser, page, errors
const files = {}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'raas-browser-retrieve-'))
  const paths = []
  for (const [name, size] of [['small', 777], ['tree', 175 * CHUNK + 9]]) {
    const bytes = randomBytes(size, size)
    const p = join(dir, name)
    await writeFile(p, bytes)
    files[name] = { path: p, size, sha: createHash('sha256').update(bytes).digest('hex') }
    paths.push(p)
  }
  gateway = await startGateway(paths)
  const started = await startServer()
  server = started.server
  ;({ browser, page, errors } = await openPage(started.url))
})

after(async () => {
  await browser?.close()
  server?.close()
  gateway?.stop()
  await rm(dir, { recursive: true, force: true })
})

test('[chromium] retrieve streams verified bytes from a gateway, with progress', async () => {
  for (const name of Object.keys(files)) {
    const cid = gateway.roots[files[name].path]
    const got = await page.evaluate(async ({ cid, gateways }) => {
      const progress = []
      const stream = await window.raas.retrieve(cid, { gateways, onProgress: (n) => progress.push(n) })
      const parts = []
      let total = 0
      for (const reader = stream.getReader(); ;) {
        const { done, value } = await reader.read()
        if (done) break
        parts.push(value)
        total += value.length
      }
      const all = new Uint8Array(total)
      let at = 0
      for (const p of parts) { all.set(p, at); at += p.length }
      const digest = await crypto.subtle.digest('SHA-256', all)
      const sha = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('')
      return { total, sha, progress, chunks: parts.length }
    }, { cid, gateways: [`${gateway.url}/flip`, `${gateway.url}/honest`] })
    assert.equal(got.total, files[name].size, name)
    assert.equal(got.sha, files[name].sha, `${name}: the exact bytes`)
    assert.equal(got.progress.at(-1), files[name].size)
    assert.ok(got.progress.every((n, i) => i === 0 || n > got.progress[i - 1]), 'progress grows')
  }
  assert.deepEqual(errors, [])
})

test('[chromium] a tampering gateway alone gives INTEGRITY, never its bytes', async () => {
  const cid = gateway.roots[files.tree.path]
  const got = await page.evaluate(async ({ cid, gateways }) => {
    let released = 0
    try {
      const stream = await window.raas.retrieve(cid, { gateways, onProgress: (n) => { released = n } })
      for (const reader = stream.getReader(); ;) {
        const { done } = await reader.read()
        if (done) break
      }
      return { ok: true }
    } catch (e) {
      return { code: e.code, message: String(e.message), released }
    }
  }, { cid, gateways: [`${gateway.url}/flip`] })
  assert.equal(got.code, 'INTEGRITY', got.message)
  assert.match(got.message, /gateway 1 http:\/\/127\.0\.0\.1:\d+\/<redacted>/)
})
