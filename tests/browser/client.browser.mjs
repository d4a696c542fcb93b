// The browser client (examples/browser/client.html) served by the example aggregator, in
// headless Chromium: pick a file → CIDs computed in the page's worker → upload → a refused
// job shown with its code → a job registered → its deals live from the contract and Lotus
// → satisfied → a verified download equal to the file. A screenshot is kept in
// target/test-artifacts/. Then a 1 GiB file hashed by the page's worker while the page keeps
// responding (its figures printed).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, open, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { chromium } from 'playwright-core'
import { start } from '../../examples/node-aggregator/server.mjs'
import { CHROMIUM_ARGS } from '../helpers/browser.mjs'

const require = createRequire(import.meta.url)
const { computeCids, computeCidsFromFile } = require('raas-node')

/** The example aggregator and its client page in Chromium; page errors collected. */
async function openClient() {
  const aggregator = await start({ port: 0, log: () => {} })
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: CHROMIUM_ARGS })
  const page = await browser.newPage({ viewport: { width: 1100, height: 1000 } })
  const errors = []
  page.on('pageerror', (e) => errors.push(e.message))
  await page.goto(aggregator.url + '/')
  return { page, errors, close: async () => { await browser.close(); await aggregator.close() } }
}

test('[chromium] the client page: hash, upload, register, watch the deals, download verified', async () => {
  const { page, errors, close } = await openClient()
  try {
    const text = (id) => page.locator(`#${id}`).textContent()
    // On a timeout, the message says what the page shows.
    const shown = () => page.evaluate(() => [...document.querySelectorAll('.state, .error, #log')]
      .map((e) => `${e.id}=${e.textContent}`).join(' | '))
    const until = (id, value, timeout = 30_000) =>
      page.waitForFunction(([id, v]) => document.getElementById(id).textContent === v, [id, value], { timeout })
        .catch(async (e) => { throw new Error(`waiting for #${id} = ${value}: ${e.message}; page: ${await shown()}`) })

    const data = randomBytes(3 * 1024 * 1024 + 17) // several UnixFS chunks
    const expected = computeCids(data)
    await page.setInputFiles('#file', { name: 'photo.bin', mimeType: 'application/octet-stream', buffer: data })
    await until('file-state', 'hashed')
    assert.equal(await text('cid'), expected.cid)
    assert.equal(await text('piece'), expected.pieceCid)
    assert.equal(await page.locator('#progress').evaluate((p) => p.value), 1)

    // A job the node refuses: the error is shown with its code, the page recovers.
    await page.fill('#copies', '0')
    await page.click('#go')
    await until('upload-state', 'error')
    assert.match(await text('upload-error'), /^\[INVALID_JOB\] .*replicationTarget/)
    await page.fill('#copies', '2')
    await page.click('#go')
    await until('upload-state', 'registered')
    assert.match(await text('uploaded'), new RegExp(expected.cid))

    await until('job-state', 'satisfied')
    await page.waitForFunction(() => document.querySelectorAll('#deals tr .state.active').length === 2, null, { timeout: 20_000 })
    const rows = await page.locator('#deals tr').allTextContents()
    assert.equal(rows.length, 2)
    for (const r of rows) assert.match(r, /^\d+f0\d+active/)
    assert.match(await text('log'), /verdict new → short \(replication: 2 needed\)[\s\S]*→ satisfied/)

    await page.click('#download')
    await until('download-state', 'verified')
    const digest = await page.evaluate(async () =>
      [...new Uint8Array(await crypto.subtle.digest('SHA-256', await window.downloaded.arrayBuffer()))]
        .map((b) => b.toString(16).padStart(2, '0')).join(''))
    assert.equal(digest, createHash('sha256').update(data).digest('hex'))
    assert.match(await text('downloaded'), /3,145,745 bytes verified/)

    await mkdir('target/test-artifacts', { recursive: true })
    await page.screenshot({ path: 'target/test-artifacts/browser-client.png', fullPage: true })
    assert.deepEqual(errors, [])
  } finally {
    await close()
  }
})

test('[chromium] the client page hashes a 1 GiB file in its worker; the page keeps responding', async () => {
  // 1 GiB of random bytes on disk (Chromium reads the picked file from there, as a stream).
  const dir = await mkdtemp(join(tmpdir(), 'raas-1gib-'))
  const path = join(dir, 'big.bin')
  const GIB = 1 << 30
  const f = await open(path, 'w')
  for (let off = 0; off < GIB; off += 64 << 20) await f.write(randomBytes(64 << 20))
  await f.close()
  const expected = await computeCidsFromFile(path)
  const { page, errors, close } = await openClient()
  try {
    // The main thread's pulse: a timer every 50 ms and each value the progress bar shows.
    await page.evaluate(() => {
      const m = window.pulse = { ticks: 0, maxGapMs: 0, bar: [] }
      let last = performance.now()
      m.timer = setInterval(() => {
        const now = performance.now()
        m.maxGapMs = Math.max(m.maxGapMs, now - last)
        last = now
        m.ticks++
        const v = document.getElementById('progress').value
        if (m.bar.at(-1) !== v) m.bar.push(v)
      }, 50)
    })
    const t0 = Date.now()
    await page.setInputFiles('#file', path)
    await page.waitForFunction(() => document.getElementById('file-state').textContent === 'hashed', null, { timeout: 600_000 })
    const secs = (Date.now() - t0) / 1000
    const pulse = await page.evaluate(() => { clearInterval(window.pulse.timer); return window.pulse })
    console.log(`# 1 GiB hashed in the page's worker in ${secs.toFixed(1)} s (${(GIB / 1e6 / secs).toFixed(0)} MB/s); ` +
      `main thread: ${pulse.ticks} timer ticks, longest gap ${pulse.maxGapMs.toFixed(0)} ms, ${pulse.bar.length} bar values`)
    assert.equal(await page.locator('#cid').textContent(), expected.cid)
    assert.equal(await page.locator('#piece').textContent(), expected.pieceCid)
    assert.equal(await page.locator('#progress').evaluate((p) => p.value), 1)
    // A page that hashed on its main thread would show one gap as long as the whole hashing
    // (seconds) and a bar that jumps from 0 to 1; this one moved through many values while its
    // timer kept firing.
    assert.ok(pulse.bar.length >= 20, `the bar moved through ${pulse.bar.length} values`)
    assert.ok(pulse.maxGapMs < Math.max(1500, secs * 1000 / 4), `longest main-thread gap ${pulse.maxGapMs} ms of ${secs} s`)
    assert.deepEqual(errors, [])
  } finally {
    await close()
    await rm(dir, { recursive: true, force: true })
  }
})
