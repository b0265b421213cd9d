//! The four messages of Prometheus remote write 1.0, and the body of a
//! request: the protobuf encoding, compressed as one raw snappy block.

use prost::Message as _;

/// The `Content-Type` of a remote-write 1.0 body.
pub(crate) const CONTENT_TYPE: &str = "application/x-protobuf";
/// The `Content-Encoding` of a remote-write 1.0 body.
pub(crate) const CONTENT_ENCODING: &str = "snappy";
/// The header naming the protocol's version, and its value for 1.0.
pub(crate) const VERSION_HEADER: (&str, &str) = ("X-Prometheus-Remote-Write-Version", "0.1.0");

/// A request: series with their samples.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct WriteRequest {
    /// The series.
    #[prost(message, repeated, tag = "1")]
    pub(crate) timeseries: Vec<TimeSeries>,
}

/// One series: its labels (`__name__` among them, sorted by name) and
/// samples.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct TimeSeries {
    /// Its labels, sorted by name.
    #[prost(message, repeated, tag = "1")]
    pub(crate) labels: Vec<Label>,
    /// Its samples, oldest first.
    #[prost(message, repeated, tag = "2")]
    pub(crate) samples: Vec<Sample>,
}

/// A label: name and value.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub(crate) struct Label {
    /// The label's name.
    #[prost(string, tag = "1")]
    pub(crate) name: String,
    /// Its value.
    #[prost(string, tag = "2")]
    pub(crate) value: String,
}

/// A sample: a value at a time in Unix milliseconds.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub(crate) struct Sample {
    /// The value.
    #[prost(double, tag = "1")]
    pub(crate) value: f64,
    /// Unix milliseconds.
    #[prost(int64, tag = "2")]
    pub(crate) timestamp: i64,
}

impl WriteRequest {
    /// The body to send: the message encoded, in one raw snappy block.
    pub(crate) fn body(&self) -> Result<Vec<u8>, snap::Error> {
        snap::raw::Encoder::new().compress_vec(&self.encode_to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_decodes_back_to_the_request() {
        let request = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![
                    Label {
                        name: "__name__".into(),
                        value: "tailmon_load1".into(),
                    },
                    Label {
                        name: "device_id".into(),
                        value: "web-1".into(),
                    },
                ],
                samples: vec![Sample {
                    value: 0.5,
                    timestamp: 1_700_000_000_123,
                }],
            }],
        };
        let body = request.body().unwrap();
        let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        assert_eq!(WriteRequest::decode(raw.as_slice()).unwrap(), request);
        // Field 1 (length-delimited) starts the encoding, as the .proto says.
        assert_eq!(raw[0], 0x0a);
    }
}
