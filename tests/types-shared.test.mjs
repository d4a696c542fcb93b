// The browser package's declarations agree with the Node package's: an interface both
// declare (generated in Node from `#[napi(object)]` Rust structs, in raas-web partly written
// beside its wasm-bindgen exports) has the same members with the same types, so "the same
// operation has the same name and result shape in Node and in the browser" holds for the
// types too. Read with the TypeScript compiler (npm `typescript`). Runs once (BACKEND=node).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const ts = require('typescript')
const { backend } = require('./helpers/backend.cjs')
const skip = backend !== 'node' && 'the declarations are compared once, in the node pass'
const file = (p) => fileURLToPath(new URL(`../${p}`, import.meta.url))
const NODE = file('bindings-node/index.d.ts')
const WEB = file('bindings-wasm/pkg/web/raas_wasm.d.ts')

/** name → { member → { type, optional } } of every exported interface in `path`. */
function interfaces(program, checker, path) {
  const out = new Map()
  const source = program.getSourceFile(path)
  assert.ok(source, `${path} is read`)
  ts.forEachChild(source, (node) => {
    if (!ts.isInterfaceDeclaration(node)) return
    const members = out.get(node.name.text) ?? {}
    for (const m of node.members) {
      if (!m.name) continue
      const type = checker.typeToString(checker.getTypeAtLocation(m), undefined, ts.TypeFormatFlags.NoTruncation)
      members[m.name.getText(source)] = { type, optional: Boolean(m.questionToken) }
    }
    out.set(node.name.text, members)
  })
  return out
}

test('interfaces declared by both packages have the same members and types', { skip }, () => {
  const program = ts.createProgram([NODE, WEB], { strict: true, noEmit: true, skipLibCheck: true, types: ['node'] })
  const checker = program.getTypeChecker()
  const node = interfaces(program, checker, NODE)
  const web = interfaces(program, checker, WEB)
  const shared = [...web.keys()].filter((name) => node.has(name))
  // The shapes of identifiers and retrieval at least (the chain shapes are one generated file).
  for (const name of ['Cids', 'PieceCids', 'CidInfo', 'RetrieveOptions', 'Deal', 'Aggregate']) {
    assert.ok(shared.includes(name), `${name} is declared by both packages`)
  }
  const problems = []
  for (const name of shared) {
    const a = node.get(name)
    const b = web.get(name)
    for (const member of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const [x, y] = [a[member], b[member]]
      if (x && y) {
        if (x.type !== y.type) problems.push(`${name}.${member}: ${x.type} in raas-node, ${y.type} in raas-web`)
        if (x.optional !== y.optional) problems.push(`${name}.${member}: optional in only one package`)
      } else if (!(x ?? y).optional) {
        problems.push(`${name}.${member}: required, but only in ${x ? 'raas-node' : 'raas-web'}`)
      }
    }
  }
  assert.deepEqual(problems, [])
})
