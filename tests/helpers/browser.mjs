// Headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core, plus a static
// server on loopback for the browser package and test payloads.
import { createServer } from 'node:http'
import { readFile } from 'node:fs/promises'
import { extname, join, normalize } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'

const root = fileURLToPath(new URL('../..', import.meta.url))
const TYPES = { '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html',
  '.json': 'application/json' }

/** Serves bindings-wasm/pkg/web under /pkg/ and `routes[path]()` results as bytes. */
export async function startServer(routes = {}) {
  const pkg = join(root, 'bindings-wasm', 'pkg', 'web')
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://localhost')
    try {
      if (routes[url.pathname]) {
        const body = await routes[url.pathname](url)
        res.writeHead(200, { 'content-type': 'application/octet-stream' })
        return res.end(body)
      }
      if (url.pathname === '/') {
        res.writeHead(200, { 'content-type': 'text/html' })
        return res.end('<!doctype html><title>raas-web tests</title>')
      }
      if (url.pathname.startsWith('/pkg/')) {
        const file = normalize(join(pkg, url.pathname.slice(5)))
        if (!file.startsWith(pkg)) throw new Error('outside pkg')
        const body = await readFile(file)
        res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' })
        return res.end(body)
      }
      res.writeHead(404).end()
    } catch (e) {
      res.writeHead(500).end(String(e))
    }
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, url: `http://127.0.0.1:${server.address().port}` }
}

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--no-first-run', '--disable-quic']

/** A page with raas-web loaded and initialised as `window.raas`. */
export async function openPage(url) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
  })
  const page = await browser.newPage()
  const errors = []
  page.on('pageerror', (e) => errors.push(e))
  await page.goto(url + '/')
  await page.evaluate(async () => {
    const mod = await import('/pkg/raas_wasm.js')
    await mod.default()
    window.raas = mod
  })
  return { browser, page, errors }
}
