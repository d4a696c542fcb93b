//! CIDs as text: the multibases CIDs are written in, without the `multibase` crate.
//!
//! `cid`'s own `Display` and `TryFrom<&str>` go through `multibase`, which links every base
//! it knows (base2 to base256emoji, through `data-encoding`'s generic codecs): about 80 KB of
//! the browser package's identifiers entry, for bases no CID is written in. Here: base32
//! (`b`, `B`, the CIDv1 default), base58btc (`z`, and CIDv0 `Qm…`), base36 (`k`, `K`, IPNS
//! and subdomain gateways) and base16 (`f`, `F`), each through a small crate.

use cid::{Cid, Version};

const BASE58BTC: &str = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const BASE36_LOWER: &str = "0123456789abcdefghijklmnopqrstuvwxyz";
const BASE36_UPPER: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const BASE32_LOWER: base32::Alphabet = base32::Alphabet::Rfc4648Lower { padding: false };
const BASE32_UPPER: base32::Alphabet = base32::Alphabet::Rfc4648 { padding: false };

/// [`cid_text`] as a method, and as a `Display` for `format!`: code that runs in the browser
/// writes CIDs through this, never through `Cid`'s own `Display` (which links `multibase`).
pub trait CidText {
    /// The canonical text ([`cid_text`]).
    fn text(&self) -> String;
    /// Formats as [`cid_text`] writes.
    fn shown(&self) -> Shown<'_>;
}

impl CidText for Cid {
    fn text(&self) -> String {
        cid_text(self)
    }
    fn shown(&self) -> Shown<'_> {
        Shown(self)
    }
}

/// A CID formatted as [`cid_text`] writes it.
pub struct Shown<'a>(&'a Cid);

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&cid_text(self.0))
    }
}

/// A CID's canonical text, as `Cid::to_string` writes it: base58btc without a prefix for
/// CIDv0, base32 lower case with the `b` prefix for CIDv1.
pub fn cid_text(cid: &Cid) -> String {
    let bytes = cid.to_bytes();
    match cid.version() {
        Version::V0 => base_x::encode(BASE58BTC, &bytes),
        Version::V1 => {
            let mut s = String::with_capacity(1 + bytes.len() * 8 / 5 + 1);
            s.push('b');
            s.push_str(&base32::encode(BASE32_LOWER, &bytes));
            s
        }
    }
}

/// The CID written in `text`: CIDv0 (`Qm…`) or a CIDv1 in base32, base58btc, base36 or
/// base16. Only the canonical spelling of each base is accepted (no padding, no stray
/// trailing bits, one letter case), so one CID has one spelling per base. The error is the
/// reason, for [`super::CidError::invalid`].
pub fn parse_cid_text(text: &str) -> Result<Cid, String> {
    // A CIDv0 is 46 base58btc characters starting `Qm` (a sha2-256 multihash), no prefix.
    if text.len() == 46 && text.starts_with("Qm") {
        let bytes = decode_base_x(BASE58BTC, text, "base58btc")?;
        return from_bytes(&bytes);
    }
    let mut chars = text.chars();
    let prefix = chars.next().ok_or("empty string")?;
    let body = chars.as_str();
    if body.is_empty() {
        return Err("nothing after the multibase prefix".into());
    }
    let bytes = match prefix {
        'b' => decode_base32(BASE32_LOWER, body)?,
        'B' => decode_base32(BASE32_UPPER, body)?,
        'z' => decode_base_x(BASE58BTC, body, "base58btc")?,
        'k' => decode_base_x(BASE36_LOWER, body, "base36")?,
        'K' => decode_base_x(BASE36_UPPER, body, "base36")?,
        'f' => decode_hex(body, false)?,
        'F' => decode_hex(body, true)?,
        other => {
            return Err(format!(
                "multibase prefix {other:?} is not accepted (write the CID in base32 `b`, \
                 base58btc `z` or `Qm…`, base36 `k` or base16 `f`)"
            ))
        }
    };
    let cid = from_bytes(&bytes)?;
    if cid.version() == Version::V0 {
        // A v0 CID has no multibase form: it is written bare.
        return Err("a CIDv0 is written without a multibase prefix (`Qm…`)".into());
    }
    Ok(cid)
}

fn from_bytes(bytes: &[u8]) -> Result<Cid, String> {
    Cid::try_from(bytes).map_err(|e| e.to_string())
}

fn decode_base32(alphabet: base32::Alphabet, body: &str) -> Result<Vec<u8>, String> {
    let bytes = base32::decode(alphabet, body).ok_or("not base32")?;
    // The crate decodes leniently (either case, ignored trailing bits): the canonical
    // spelling is the one that encodes back to the same text.
    if base32::encode(alphabet, &bytes) != body {
        return Err("not canonical base32 (wrong letter case or trailing bits)".into());
    }
    Ok(bytes)
}

fn decode_base_x(alphabet: &str, body: &str, name: &str) -> Result<Vec<u8>, String> {
    let bytes = base_x::decode(alphabet, body).map_err(|_| format!("not {name}"))?;
    if base_x::encode(alphabet, &bytes) != body {
        return Err(format!("not canonical {name}"));
    }
    Ok(bytes)
}

fn decode_hex(body: &str, upper: bool) -> Result<Vec<u8>, String> {
    let bytes = hex::decode(body).map_err(|_| "not base16".to_string())?;
    let again = if upper {
        hex::encode_upper(&bytes)
    } else {
        hex::encode(&bytes)
    };
    if again != body {
        return Err("not canonical base16 (mixed letter case)".into());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cid::multibase::Base;

    fn sample_cids() -> Vec<Cid> {
        let mut out = vec![];
        for (i, codec) in [0x55u64, 0x70, 0x71, 0xf101].iter().enumerate() {
            for len in [0usize, 1, 31, 32, 33, 64] {
                let data: Vec<u8> = (0..len).map(|j| (j * 7 + i) as u8).collect();
                let digest = match len {
                    32 => data.clone(),
                    _ => {
                        use sha2::Digest;
                        sha2::Sha256::digest(&data).to_vec()
                    }
                };
                let mh = cid::multihash::Multihash::<64>::wrap(0x12, &digest).unwrap();
                out.push(Cid::new_v1(*codec, mh));
                if *codec == 0x70 {
                    out.push(Cid::new_v0(mh).unwrap());
                }
            }
        }
        out
    }

    /// The `cid` crate's own text forms (through `multibase`) are the reference.
    #[test]
    fn agrees_with_the_cid_crate_in_every_accepted_base() {
        for cid in sample_cids() {
            assert_eq!(cid_text(&cid), cid.to_string());
            assert_eq!(parse_cid_text(&cid.to_string()).unwrap(), cid);
            if cid.version() == Version::V0 {
                continue;
            }
            for base in [
                Base::Base32Lower,
                Base::Base32Upper,
                Base::Base58Btc,
                Base::Base36Lower,
                Base::Base36Upper,
                Base::Base16Lower,
                Base::Base16Upper,
            ] {
                let text = cid.to_string_of_base(base).unwrap();
                assert_eq!(parse_cid_text(&text).unwrap(), cid, "{base:?} {text}");
            }
            for base in [Base::Base64, Base::Base2, Base::Base32Z] {
                let text = cid.to_string_of_base(base).unwrap();
                assert!(parse_cid_text(&text).unwrap_err().contains("not accepted"));
            }
        }
    }

    #[test]
    fn non_canonical_spellings_are_refused() {
        let cid = sample_cids()[0];
        let b32 = cid.to_string();
        // Mixed case, a base32 character carrying trailing bits, hex in the wrong case.
        let mixed = format!("b{}", b32[1..].to_uppercase());
        assert!(parse_cid_text(&mixed).is_err());
        let mut tail = b32.clone();
        tail.pop();
        tail.push('7');
        assert!(parse_cid_text(&tail).is_err(), "{tail}");
        let hex = cid.to_string_of_base(Base::Base16Lower).unwrap();
        assert!(parse_cid_text(&format!("f{}", hex[1..].to_uppercase())).is_err());
        let v0 = Cid::new_v0(*sample_cids()[7].hash()).unwrap();
        let z = format!("z{v0}");
        assert!(parse_cid_text(&z).is_err());
        for bad in ["b", "z0OIl", "k!", "f0", "Qm"] {
            assert!(parse_cid_text(bad).is_err(), "{bad}");
        }
    }
}
