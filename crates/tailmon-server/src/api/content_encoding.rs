//! Which compression a client accepts (`Accept-Encoding`, with its
//! `q`-values), and compressing a body with it: gzip and brotli always,
//! zstd with the `sqlite` feature (which brings the zstd library).

use std::io::Write;

use axum::http::HeaderMap;
use axum::http::header::ACCEPT_ENCODING;

/// How an answer's body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// As is.
    Identity,
    /// gzip (RFC 1952).
    Gzip,
    /// Brotli (RFC 7932).
    Br,
    /// Zstandard (RFC 8878); only with the `sqlite` feature.
    #[cfg(feature = "sqlite")]
    Zstd,
}

/// The compressed encodings the server offers, most preferred first when a
/// client accepts several equally.
#[cfg(feature = "sqlite")]
pub(crate) const COMPRESSED: [Encoding; 3] = [Encoding::Br, Encoding::Zstd, Encoding::Gzip];
/// The compressed encodings the server offers, most preferred first when a
/// client accepts several equally.
#[cfg(not(feature = "sqlite"))]
pub(crate) const COMPRESSED: [Encoding; 2] = [Encoding::Br, Encoding::Gzip];

impl Encoding {
    /// Its `Content-Encoding` token.
    pub(crate) fn token(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Gzip => "gzip",
            Self::Br => "br",
            #[cfg(feature = "sqlite")]
            Self::Zstd => "zstd",
        }
    }

    /// Its place in [`COMPRESSED`]; `None` for identity.
    pub(crate) fn index(self) -> Option<usize> {
        COMPRESSED.iter().position(|e| *e == self)
    }

    /// The best encoding the request's `Accept-Encoding` allows: the
    /// compressed one with the highest `q` above 0 (ties go to the order of
    /// [`COMPRESSED`]) unless identity is named with a higher `q`; identity when
    /// none is accepted. A coding with `q=0` is refused; `*` stands for
    /// every coding not named.
    pub(crate) fn negotiate(headers: &HeaderMap) -> Self {
        let mut named: Vec<(&str, f32)> = Vec::new();
        for value in headers.get_all(ACCEPT_ENCODING) {
            let Ok(text) = value.to_str() else { continue };
            for item in text.split(',') {
                let mut parts = item.split(';');
                let coding = parts.next().unwrap_or_default().trim();
                if coding.is_empty() {
                    continue;
                }
                let mut q = Some(1.0);
                for param in parts {
                    let Some((name, value)) = param.split_once('=') else {
                        continue;
                    };
                    if name.trim().eq_ignore_ascii_case("q") {
                        q = parse_q(value.trim());
                    }
                }
                // A malformed q-value makes the item void.
                if let Some(q) = q {
                    named.push((coding, q));
                }
            }
        }
        let q_of = |token: &str| -> f32 {
            named
                .iter()
                .find(|(coding, _)| coding.eq_ignore_ascii_case(token))
                .or_else(|| named.iter().find(|(coding, _)| *coding == "*"))
                .map_or(0.0, |(_, q)| *q)
        };
        let identity_q = named
            .iter()
            .find(|(coding, _)| coding.eq_ignore_ascii_case("identity"))
            .or_else(|| named.iter().find(|(coding, _)| *coding == "*"))
            // Not named, identity is the fallback, not a preference.
            .map_or(0.0, |(_, q)| *q);
        let mut best = (Self::Identity, 0.0_f32);
        for encoding in COMPRESSED {
            let q = q_of(encoding.token());
            if q > best.1 {
                best = (encoding, q);
            }
        }
        if best.1 > 0.0 && best.1 >= identity_q {
            best.0
        } else {
            Self::Identity
        }
    }

    /// `body` encoded so.
    pub(crate) fn compress(self, body: &[u8]) -> std::io::Result<Vec<u8>> {
        match self {
            Self::Identity => Ok(body.to_vec()),
            Self::Gzip => {
                let mut encoder = flate2::write::GzEncoder::new(
                    Vec::with_capacity(body.len() / 8),
                    flate2::Compression::new(6),
                );
                encoder.write_all(body)?;
                encoder.finish()
            }
            Self::Br => {
                let mut out = Vec::with_capacity(body.len() / 8);
                {
                    // A window no larger than the body (2^10 to 2^22 bytes).
                    let window = body.len().clamp(1024, 1 << 22).next_power_of_two().ilog2();
                    let mut encoder = brotli::CompressorWriter::new(&mut out, 64 * 1024, 4, window);
                    encoder.write_all(body)?;
                    encoder.flush()?;
                }
                Ok(out)
            }
            #[cfg(feature = "sqlite")]
            Self::Zstd => zstd::bulk::compress(body, 3),
        }
    }
}

/// A `q`-value: 0 to 1 with at most three decimals.
fn parse_q(text: &str) -> Option<f32> {
    let q: f32 = text.parse().ok()?;
    (q.is_finite() && (0.0..=1.0).contains(&q) && text.len() <= 5).then_some(q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn pick(accept: &str) -> Encoding {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_str(accept).unwrap());
        Encoding::negotiate(&headers)
    }

    #[test]
    fn q_values_choose_and_refuse() {
        assert_eq!(Encoding::negotiate(&HeaderMap::new()), Encoding::Identity);
        assert_eq!(pick("gzip"), Encoding::Gzip);
        assert_eq!(pick("gzip, br"), Encoding::Br);
        assert_eq!(pick("gzip;q=1, br;q=0.5"), Encoding::Gzip);
        assert_eq!(pick("gzip;q=0"), Encoding::Identity);
        assert_eq!(pick("gzip;q=0, br;q=0"), Encoding::Identity);
        assert_eq!(pick("*;q=0"), Encoding::Identity);
        assert_eq!(pick("*, br;q=0"), COMPRESSED[1]);
        assert_eq!(pick("GZIP ; Q=0.8"), Encoding::Gzip);
        assert_eq!(pick("gzip;q=0.5, identity"), Encoding::Identity);
        assert_eq!(
            pick("gzip;q=2"),
            Encoding::Identity,
            "a bad q voids the item"
        );
        assert_eq!(pick("deflate, compress"), Encoding::Identity);
        #[cfg(feature = "sqlite")]
        assert_eq!(pick("zstd, gzip;q=0.9"), Encoding::Zstd);
    }

    #[test]
    fn every_encoding_round_trips() {
        use std::io::Read;
        let body = br#"[{"device_id":"a"},{"device_id":"b"}]"#.repeat(50);
        let gz = Encoding::Gzip.compress(&body).unwrap();
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, body);
        let br = Encoding::Br.compress(&body).unwrap();
        let mut out = Vec::new();
        brotli::Decompressor::new(&br[..], 4096)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, body);
        assert!(br.len() < body.len() / 4);
        #[cfg(feature = "sqlite")]
        assert_eq!(
            zstd::decode_all(&Encoding::Zstd.compress(&body).unwrap()[..]).unwrap(),
            body
        );
    }
}
