//! The wire contract between the vm-system daemon and its workers: frame types, the codec and the version.
//!
//! Only the types defined here cross the pipe. Frames are MessagePack maps (named fields), so a new
//! optional field stays readable by an older peer; anything else is a protocol version bump.

mod codec;
mod error;
mod frame;
mod packet;
mod version;
mod zygote;

pub use codec::{FrameCodec, MAX_FRAME_LEN};
pub use error::CodecError;
pub use frame::{
    Budget, ConsoleLevel, EventType, ExecId, ExecKind, ExecLimits, ExecOutcome, FromWorker,
    OutputLimit, SessionConfig, StopCause, ToWorker, WorkerEvent,
};
pub use packet::{recv_packet, send_packet, seqpacket_pair};
pub use version::{PROTOCOL_VERSION, is_compatible};
pub use zygote::{FORK_FDS, FromZygote, MAX_PACKET_LEN, ToZygote, decode_packet, encode_packet};
