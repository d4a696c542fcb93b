// Compiles contracts/*.sol with the npm `solc` package into contracts/artifacts.json
// ({ Name: { abi, bytecode, deployedBytecode } }). `--check` fails if the committed artifact
// differs from what the sources compile to (run in CI).
import { readFileSync, writeFileSync, readdirSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import solc from 'solc'

const here = dirname(fileURLToPath(import.meta.url))
const out = join(here, 'artifacts.json')
const sources = {}
for (const dir of [here, join(here, 'test')]) {
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.sol'))) {
    sources[relative(here, join(dir, f))] = { content: readFileSync(join(dir, f), 'utf8') }
  }
}
const input = {
  language: 'Solidity',
  sources,
  settings: {
    // paris: no PUSH0, runs on FEVM and anvil alike
    evmVersion: 'paris',
    optimizer: { enabled: true, runs: 200 },
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object', 'evm.methodIdentifiers'] } },
  },
}
const result = JSON.parse(solc.compile(JSON.stringify(input)))
const errors = (result.errors ?? []).filter((e) => e.severity === 'error')
for (const e of result.errors ?? []) console.error(e.formattedMessage)
if (errors.length) process.exit(1)

const artifacts = { compiler: solc.version() }
for (const [file, contracts] of Object.entries(result.contracts)) {
  for (const [name, c] of Object.entries(contracts)) {
    // interfaces, and libraries whose functions are all inlined, have nothing to deploy
    if (!c.evm.bytecode.object || c.abi.length === 0) continue
    artifacts[name] = { source: file, abi: c.abi, methods: c.evm.methodIdentifiers,
      bytecode: '0x' + c.evm.bytecode.object, deployedBytecode: '0x' + c.evm.deployedBytecode.object }
  }
}
const text = JSON.stringify(artifacts, null, 1) + '\n'
if (process.argv.includes('--check')) {
  if (readFileSync(out, 'utf8') !== text) {
    console.error('contracts/artifacts.json is stale: run `node contracts/compile.mjs`')
    process.exit(1)
  }
  console.log('contracts/artifacts.json matches the sources')
} else {
  writeFileSync(out, text)
  console.log(`wrote ${relative(process.cwd(), out)}: ${Object.keys(artifacts).filter((k) => k !== 'compiler').join(', ')}`)
}
