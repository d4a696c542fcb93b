// Serves the repository on http://127.0.0.1:8080/examples/browser/ (build first:
// `npm run build:wasm`).
import { createServer } from 'node:http'
import { readFile } from 'node:fs/promises'
import { extname, join, normalize } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))
const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' }
const port = Number(process.env.PORT ?? 8080)
createServer(async (req, res) => {
  const path = normalize(join(root, decodeURIComponent(new URL(req.url, 'http://x').pathname)))
  if (!path.startsWith(root)) return res.writeHead(403).end()
  try {
    const body = await readFile(path.endsWith('/') ? join(path, 'index.html') : path)
    res.writeHead(200, { 'content-type': types[extname(path) || '.html'] ?? 'application/octet-stream' })
    res.end(body)
  } catch {
    res.writeHead(404).end()
  }
}).listen(port, '127.0.0.1', () => console.log(`http://127.0.0.1:${port}/examples/browser/`))
