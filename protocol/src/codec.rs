//! `FrameCodec`: length-delimited MessagePack frames (4-byte big-endian length, named-field encoding).

use std::marker::PhantomData;

use bytes::{Bytes, BytesMut};
use serde::{Serialize, de::DeserializeOwned};
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

use crate::CodecError;

/// Largest frame either side accepts: a 64 MiB payload (the largest `max_output_kb`) plus room for
/// the envelope. A larger length prefix is a protocol error, never an allocation.
pub const MAX_FRAME_LEN: usize = 72 * 1024 * 1024;

/// Decodes frames of type `In` and encodes frames of type `Out`.
#[derive(Debug)]
pub struct FrameCodec<In, Out> {
    inner: LengthDelimitedCodec,
    /// A length prefix was read and its body has not fully arrived yet.
    mid_frame: bool,
    _types: PhantomData<fn(Out) -> In>,
}

impl<In, Out> FrameCodec<In, Out> {
    /// A codec with the protocol's maximum frame length.
    pub fn new() -> Self {
        Self::with_max_frame_len(MAX_FRAME_LEN)
    }

    /// A codec with a custom maximum frame length (tests use small ones).
    pub fn with_max_frame_len(max: usize) -> Self {
        let inner = LengthDelimitedCodec::builder()
            .length_field_length(4)
            .max_frame_length(max)
            .new_codec();
        FrameCodec {
            inner,
            mid_frame: false,
            _types: PhantomData,
        }
    }

    /// Encodes one frame body (without the length prefix) as named MessagePack.
    pub fn encode_body(frame: &Out) -> Result<Vec<u8>, CodecError>
    where
        Out: Serialize,
    {
        rmp_serde::to_vec_named(frame).map_err(CodecError::Encode)
    }
}

impl<In, Out> Default for FrameCodec<In, Out> {
    fn default() -> Self {
        Self::new()
    }
}

impl<In: DeserializeOwned, Out> Decoder for FrameCodec<In, Out> {
    type Item = In;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<In>, CodecError> {
        let had_header = src.len() >= 4;
        match self.inner.decode(src)? {
            Some(body) => {
                self.mid_frame = false;
                rmp_serde::from_slice(&body)
                    .map(Some)
                    .map_err(CodecError::Decode)
            }
            None => {
                // The inner codec consumes the prefix before the body arrives; remember that, so
                // a stream ending here is reported as truncated rather than as a clean end.
                self.mid_frame |= had_header;
                Ok(None)
            }
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<In>, CodecError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if self.mid_frame || !src.is_empty() => Err(CodecError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "stream ended inside a frame",
            ))),
            None => Ok(None),
        }
    }
}

impl<In, Out: Serialize> Encoder<Out> for FrameCodec<In, Out> {
    type Error = CodecError;

    fn encode(&mut self, frame: Out, dst: &mut BytesMut) -> Result<(), CodecError> {
        let body = Self::encode_body(&frame)?;
        let max = self.inner.max_frame_length();
        if body.len() > max {
            return Err(CodecError::TooLarge {
                len: body.len(),
                max,
            });
        }
        self.inner.encode(Bytes::from(body), dst)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use tokio_util::codec::FramedRead;

    use super::*;
    use crate::{
        Budget, ConsoleLevel, EventType, ExecId, ExecKind, ExecLimits, ExecOutcome, FromWorker,
        OutputLimit, SessionConfig, StopCause, ToWorker, WorkerEvent,
    };

    fn every_to_worker() -> Vec<ToWorker> {
        let limits = ExecLimits {
            wall_ms: 30_000,
            cpu_ms: 5_000,
        };
        let budget = Budget {
            events: 999,
            bytes: 524_000,
            max_events: 1000,
            max_output_kb: 512,
        };
        let exec = |kind| ToWorker::Exec {
            id: ExecId(7),
            kind,
            name: "<repl>".into(),
            source: "1 + 1".into(),
            limits,
            budget,
        };
        let mut frames = vec![
            ToWorker::Configure(SessionConfig {
                worktree: "/srv/wt".into(),
                mem_mb: 128,
                strict: true,
                console: false,
                modules: vec!["fs".into(), "exec".into()],
                fs_read: true,
                fs_write: false,
                exec_allow: vec!["/bin/echo".into()],
                env: vec![("HOME".into(), "/root".into())],
            }),
            exec(ExecKind::Repl),
            exec(ExecKind::RunFile {
                args_json: r#"{"a":[1,null]}"#.into(),
                env: vec![("K".into(), "v".into())],
            }),
            exec(ExecKind::Startup),
            exec(ExecKind::Library),
            ToWorker::Shutdown,
        ];
        for cause in every_cause() {
            frames.push(ToWorker::Cancel {
                id: ExecId(u64::MAX),
                cause,
            });
        }
        frames
    }

    fn every_cause() -> Vec<StopCause> {
        vec![
            StopCause::Cancelled,
            StopCause::SessionClosed,
            StopCause::SessionRestarted,
            StopCause::DaemonShutdown,
            StopCause::WallTime,
            StopCause::CpuTime,
            StopCause::Output(OutputLimit::MaxEvents),
            StopCause::Output(OutputLimit::MaxOutputKb),
            StopCause::Memory,
        ]
    }

    fn every_from_worker() -> Vec<FromWorker> {
        let mut frames = vec![
            FromWorker::Hello {
                protocol_version: crate::PROTOCOL_VERSION,
                pid: 4242,
                engine: "quickjs".into(),
                engine_version: "0.413.0".into(),
            },
            FromWorker::Ready,
            FromWorker::BootFailed {
                reason: "no runtime".into(),
            },
            FromWorker::Configured,
            FromWorker::ConfigureFailed {
                reason: "bad worktree".into(),
            },
            FromWorker::Stats {
                id: ExecId(1),
                cpu_ms: 12,
            },
            FromWorker::Fatal {
                reason: "memory limit exceeded (mem_mb=16)".into(),
            },
        ];
        for event_type in [EventType::Console, EventType::Value, EventType::Exception] {
            frames.push(FromWorker::Event(WorkerEvent {
                id: ExecId(1),
                seq: 3,
                event_type,
                payload: r#"{"level":"log","text":"héllo ✓"}"#.into(),
            }));
        }
        let mut outcomes = vec![ExecOutcome::Ok, ExecOutcome::Exception];
        outcomes.extend(
            every_cause()
                .into_iter()
                .map(|cause| ExecOutcome::Stopped { cause }),
        );
        for outcome in outcomes {
            frames.push(FromWorker::Done {
                id: ExecId(1),
                outcome,
                cpu_ms: 3,
                wall_ms: 4,
            });
        }
        frames
    }

    fn round_trip<T>(frames: Vec<T>)
    where
        T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug + Clone,
    {
        let mut codec = FrameCodec::<T, T>::new();
        let mut buf = BytesMut::new();
        for frame in &frames {
            codec.encode(frame.clone(), &mut buf).unwrap();
        }
        let mut decoded = Vec::new();
        while let Some(frame) = codec.decode(&mut buf).unwrap() {
            decoded.push(frame);
        }
        assert_eq!(decoded, frames);
        assert!(buf.is_empty());
    }

    #[test]
    fn every_variant_round_trips() {
        round_trip(every_to_worker());
        round_trip(every_from_worker());
    }

    #[test]
    fn console_levels_spell_like_the_spec() {
        let levels = [
            (ConsoleLevel::Log, "log"),
            (ConsoleLevel::Info, "info"),
            (ConsoleLevel::Warn, "warn"),
            (ConsoleLevel::Error, "error"),
            (ConsoleLevel::Debug, "debug"),
        ];
        for (level, text) in levels {
            assert_eq!(level.as_str(), text);
        }
    }

    #[test]
    fn frames_are_named_maps() {
        // Named encoding keeps field names on the wire, so adding an optional field stays readable.
        let body = FrameCodec::<FromWorker, FromWorker>::encode_body(&FromWorker::Stats {
            id: ExecId(1),
            cpu_ms: 2,
        })
        .unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("cpu_ms"), "{text}");
    }

    async fn read_all(bytes: Vec<u8>, max: usize) -> Vec<Result<FromWorker, CodecError>> {
        let codec = FrameCodec::<FromWorker, FromWorker>::with_max_frame_len(max);
        FramedRead::new(&bytes[..], codec).collect().await
    }

    #[tokio::test]
    async fn truncated_frame_is_a_typed_error() {
        let mut buf = BytesMut::new();
        FrameCodec::<FromWorker, FromWorker>::new()
            .encode(FromWorker::Ready, &mut buf)
            .unwrap();
        let whole = buf.to_vec();
        for cut in 1..whole.len() {
            let results = read_all(whole[..cut].to_vec(), MAX_FRAME_LEN).await;
            assert_eq!(results.len(), 1, "cut at {cut}");
            assert!(matches!(results[0], Err(CodecError::Io(_))), "cut at {cut}");
        }
    }

    #[tokio::test]
    async fn oversized_frame_is_a_typed_error() {
        // A length prefix above the limit is refused before anything is allocated.
        let mut bytes = (1024u32 * 1024 * 1024).to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0; 16]);
        let results = read_all(bytes, MAX_FRAME_LEN).await;
        assert!(matches!(results.first(), Some(Err(CodecError::Io(_)))));

        // Encoding a frame larger than the limit fails too.
        let mut codec = FrameCodec::<FromWorker, FromWorker>::with_max_frame_len(64);
        let mut buf = BytesMut::new();
        let big = FromWorker::Fatal {
            reason: "x".repeat(100),
        };
        assert!(matches!(
            codec.encode(big, &mut buf),
            Err(CodecError::TooLarge { max: 64, .. })
        ));
        assert!(buf.is_empty());
    }

    #[tokio::test]
    async fn garbage_is_a_typed_error() {
        let cases: Vec<Vec<u8>> = vec![
            vec![0xc1],             // reserved MessagePack byte
            vec![0xff, 0xff, 0xff], // negative fixints
            b"not messagepack at all".to_vec(),
            vec![0x81, 0xa3, b'f', b'o', b'o', 0x01], // a map naming no known variant
            vec![],                                   // empty body
        ];
        for body in cases {
            let mut bytes = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
            bytes.extend_from_slice(&body);
            let results = read_all(bytes, MAX_FRAME_LEN).await;
            assert!(
                matches!(results.first(), Some(Err(CodecError::Decode(_)))),
                "{body:?}: {results:?}"
            );
        }
    }
}
