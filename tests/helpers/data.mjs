// Deterministic pseudo-random payloads (xorshift), so a failure can be reproduced exactly.
export function randomBytes(length, seed = 1) {
  const out = new Uint8Array(length)
  let x = (seed * 0x9e3779b9) >>> 0 || 1
  for (let i = 0; i < length; i++) {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    out[i] = x & 0xff
  }
  return out
}

const KiB = 1024
const MiB = 1024 * KiB

/** Edge sizes from the foundation issue: each size and one byte either side. */
export const EDGE_SIZES = (() => {
  const around = [127, 128, 254, 255, 256 * KiB, 2 * 256 * KiB, 174 * 256 * KiB]
  const sizes = new Set([0, 1, 126, 127, 128, 254, 255])
  for (const n of around) for (const d of [-1, 0, 1]) sizes.add(n + d)
  for (const n of [3 * MiB + 17, 8 * MiB]) sizes.add(n)
  return [...sizes].sort((a, b) => a - b)
})()
