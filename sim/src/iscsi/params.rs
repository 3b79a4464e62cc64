//! Operational parameter negotiation (RFC 7143 §6.2, §13).
//!
//! Each key the initiator offers gets one answer computed from the offer and the target's
//! limits, following the key's rule in §13: list selection (digests), numerical minimum or
//! maximum, boolean AND/OR, or a declaration with no answer. Keys we do not know are
//! answered `NotUnderstood` (§6.2.1), keys that make no sense for a discovery session are
//! answered `Irrelevant` (§13 "Irrelevant when: SessionType=Discovery"), and values
//! outside a key's range or syntax are answered `Reject` (§6.2.1). Keys the initiator
//! does not offer keep their defaults (§13).

use core::fmt;

use super::text::{bool_str, parse_bool, parse_number};
use super::wire::LoginStatus;

/// The smallest MaxRecvDataSegmentLength/MaxBurstLength/FirstBurstLength (§13.12-§13.14).
pub const MIN_LENGTH: u32 = 512;
/// The largest of those (2^24 - 1).
pub const MAX_LENGTH: u32 = 16_777_215;

/// A digest choice (RFC 7143 §13.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Digest {
    /// No digest.
    #[default]
    None,
    /// CRC32C.
    Crc32c,
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Digest::None => "None",
            Digest::Crc32c => "CRC32C",
        })
    }
}

/// Which digests the target accepts for headers or data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestPolicy {
    /// `None` is acceptable.
    pub none: bool,
    /// `CRC32C` is acceptable.
    pub crc32c: bool,
}

impl DigestPolicy {
    /// Either, as the initiator prefers.
    pub const ANY: DigestPolicy = DigestPolicy {
        none: true,
        crc32c: true,
    };
    /// CRC32C required.
    pub const REQUIRE_CRC32C: DigestPolicy = DigestPolicy {
        none: false,
        crc32c: true,
    };
    /// Digests refused.
    pub const NONE_ONLY: DigestPolicy = DigestPolicy {
        none: true,
        crc32c: false,
    };

    fn accepts(&self, d: Digest) -> bool {
        match d {
            Digest::None => self.none,
            Digest::Crc32c => self.crc32c,
        }
    }
}

/// What the target is willing to do; the inputs of negotiation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetLimits {
    /// Header digests accepted.
    pub header_digest: DigestPolicy,
    /// Data digests accepted.
    pub data_digest: DigestPolicy,
    /// Our MaxRecvDataSegmentLength (declared to the initiator).
    pub max_recv_data_segment_length: u32,
    /// Largest MaxBurstLength we agree to.
    pub max_burst_length: u32,
    /// Largest FirstBurstLength we agree to.
    pub first_burst_length: u32,
    /// Largest MaxOutstandingR2T we agree to.
    pub max_outstanding_r2t: u16,
    /// Whether we allow immediate data (ImmediateData, AND).
    pub immediate_data: bool,
    /// Whether we require an R2T before any unsolicited Data-Out (InitialR2T, OR).
    pub initial_r2t: bool,
    /// Our DefaultTime2Wait (maximum of both).
    pub default_time2wait: u16,
    /// Our DefaultTime2Retain (minimum of both).
    pub default_time2retain: u16,
}

impl Default for TargetLimits {
    fn default() -> Self {
        TargetLimits {
            header_digest: DigestPolicy::ANY,
            data_digest: DigestPolicy::ANY,
            max_recv_data_segment_length: 262_144,
            max_burst_length: 1_048_576,
            first_burst_length: 262_144,
            max_outstanding_r2t: 8,
            immediate_data: true,
            initial_r2t: false,
            default_time2wait: 2,
            default_time2retain: 0,
        }
    }
}

/// The operational parameters in force for a session and its connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionParams {
    /// HeaderDigest.
    pub header_digest: Digest,
    /// DataDigest.
    pub data_digest: Digest,
    /// The initiator's MaxRecvDataSegmentLength: the largest data segment we may send.
    pub max_xmit_data_segment_length: u32,
    /// Our MaxRecvDataSegmentLength: the largest data segment we accept.
    pub max_recv_data_segment_length: u32,
    /// MaxBurstLength.
    pub max_burst_length: u32,
    /// FirstBurstLength.
    pub first_burst_length: u32,
    /// MaxOutstandingR2T.
    pub max_outstanding_r2t: u16,
    /// ImmediateData.
    pub immediate_data: bool,
    /// InitialR2T.
    pub initial_r2t: bool,
    /// DataPDUInOrder (always Yes here).
    pub data_pdu_in_order: bool,
    /// DataSequenceInOrder (always Yes here).
    pub data_sequence_in_order: bool,
    /// DefaultTime2Wait.
    pub default_time2wait: u16,
    /// DefaultTime2Retain.
    pub default_time2retain: u16,
    /// ErrorRecoveryLevel (always 0 here).
    pub error_recovery_level: u8,
    /// MaxConnections (always 1 here).
    pub max_connections: u16,
}

impl SessionParams {
    /// The RFC 7143 §13 defaults, with our own receive limit.
    pub fn defaults(limits: &TargetLimits) -> Self {
        SessionParams {
            header_digest: Digest::None,
            data_digest: Digest::None,
            max_xmit_data_segment_length: 8192,
            max_recv_data_segment_length: limits.max_recv_data_segment_length,
            max_burst_length: 262_144.min(limits.max_burst_length),
            first_burst_length: 65_536
                .min(limits.first_burst_length)
                .min(limits.max_burst_length),
            max_outstanding_r2t: 1,
            // RFC defaults; a target that wants otherwise would have to offer the key
            // itself, which this portal does not do (documented limitation).
            immediate_data: true,
            initial_r2t: true,
            data_pdu_in_order: true,
            data_sequence_in_order: true,
            default_time2wait: 2,
            default_time2retain: 20.min(limits.default_time2retain),
            error_recovery_level: 0,
            max_connections: 1,
        }
    }
}

/// The type of session being negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionType {
    /// A normal session (SCSI commands).
    Normal,
    /// A discovery session (SendTargets only).
    Discovery,
}

/// The answer to one offered key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Send `key=value` back.
    Reply(String),
    /// Declarative key: nothing to send back.
    Silent,
    /// Not an operational key: the caller (login) handles it.
    NotOperational,
    /// The offer is a protocol error that fails the login with this status.
    Fail(LoginStatus),
}

fn number_in(v: &str, lo: u64, hi: u64) -> Option<u64> {
    parse_number(v).filter(|n| (lo..=hi).contains(n))
}

fn irrelevant_in_discovery(key: &str) -> bool {
    matches!(
        key,
        "MaxConnections"
            | "InitialR2T"
            | "ImmediateData"
            | "MaxBurstLength"
            | "FirstBurstLength"
            | "MaxOutstandingR2T"
            | "DataPDUInOrder"
            | "DataSequenceInOrder"
    )
}

/// Keys handled by the login layer, not by negotiation.
pub fn is_login_key(key: &str) -> bool {
    matches!(
        key,
        "InitiatorName" | "InitiatorAlias" | "TargetName" | "SessionType" | "AuthMethod"
    ) || key.starts_with("CHAP_")
}

/// Negotiates one key offered by the initiator, updating `p` with the result.
pub fn negotiate(
    key: &str,
    value: &str,
    limits: &TargetLimits,
    session: SessionType,
    p: &mut SessionParams,
) -> Answer {
    if is_login_key(key) {
        return Answer::NotOperational;
    }
    // Answers from the initiator to our own offers never happen: we offer nothing.
    if matches!(value, "NotUnderstood" | "Irrelevant" | "Reject") {
        return Answer::Silent;
    }
    if session == SessionType::Discovery && irrelevant_in_discovery(key) {
        return Answer::Reply("Irrelevant".into());
    }
    let reject = || Answer::Reply("Reject".into());
    match key {
        "HeaderDigest" | "DataDigest" => {
            let policy = if key == "HeaderDigest" {
                limits.header_digest
            } else {
                limits.data_digest
            };
            let mut chosen = None;
            for v in value.split(',') {
                let d = match v {
                    "None" => Digest::None,
                    "CRC32C" => Digest::Crc32c,
                    _ => continue,
                };
                if policy.accepts(d) {
                    chosen = Some(d);
                    break;
                }
            }
            match chosen {
                Some(d) => {
                    if key == "HeaderDigest" {
                        p.header_digest = d;
                    } else {
                        p.data_digest = d;
                    }
                    Answer::Reply(d.to_string())
                }
                None => reject(),
            }
        }
        "MaxRecvDataSegmentLength" => {
            match number_in(value, u64::from(MIN_LENGTH), u64::from(MAX_LENGTH)) {
                Some(n) => {
                    p.max_xmit_data_segment_length = n as u32;
                    Answer::Silent
                }
                None => Answer::Fail(LoginStatus::INITIATOR_ERROR),
            }
        }
        "MaxBurstLength" | "FirstBurstLength" => {
            match number_in(value, u64::from(MIN_LENGTH), u64::from(MAX_LENGTH)) {
                Some(n) => {
                    let n = n as u32;
                    if key == "MaxBurstLength" {
                        p.max_burst_length = n.min(limits.max_burst_length);
                        p.first_burst_length = p.first_burst_length.min(p.max_burst_length);
                        Answer::Reply(p.max_burst_length.to_string())
                    } else {
                        p.first_burst_length = n.min(limits.first_burst_length);
                        Answer::Reply(p.first_burst_length.to_string())
                    }
                }
                None => reject(),
            }
        }
        "MaxOutstandingR2T" => match number_in(value, 1, 65535) {
            Some(n) => {
                p.max_outstanding_r2t = (n as u16).min(limits.max_outstanding_r2t).max(1);
                Answer::Reply(p.max_outstanding_r2t.to_string())
            }
            None => reject(),
        },
        "MaxConnections" => match number_in(value, 1, 65535) {
            Some(_) => {
                p.max_connections = 1;
                Answer::Reply("1".into())
            }
            None => reject(),
        },
        "ErrorRecoveryLevel" => match number_in(value, 0, 2) {
            Some(_) => {
                p.error_recovery_level = 0;
                Answer::Reply("0".into())
            }
            None => reject(),
        },
        "DefaultTime2Wait" => match number_in(value, 0, 3600) {
            Some(n) => {
                p.default_time2wait = (n as u16).max(limits.default_time2wait);
                Answer::Reply(p.default_time2wait.to_string())
            }
            None => reject(),
        },
        "DefaultTime2Retain" => match number_in(value, 0, 3600) {
            Some(n) => {
                p.default_time2retain = (n as u16).min(limits.default_time2retain);
                Answer::Reply(p.default_time2retain.to_string())
            }
            None => reject(),
        },
        "InitialR2T" => match parse_bool(value) {
            Some(b) => {
                p.initial_r2t = b || limits.initial_r2t;
                Answer::Reply(bool_str(p.initial_r2t).into())
            }
            None => reject(),
        },
        "ImmediateData" => match parse_bool(value) {
            Some(b) => {
                p.immediate_data = b && limits.immediate_data;
                Answer::Reply(bool_str(p.immediate_data).into())
            }
            None => reject(),
        },
        // We deliver and accept data in order only: OR with our Yes is Yes.
        "DataPDUInOrder" | "DataSequenceInOrder" => match parse_bool(value) {
            Some(_) => Answer::Reply("Yes".into()),
            None => reject(),
        },
        // Markers (RFC 3720 §A.3, removed by RFC 7143 but still sent by old
        // initiators): AND with our No.
        "IFMarker" | "OFMarker" => match parse_bool(value) {
            Some(_) => Answer::Reply("No".into()),
            None => reject(),
        },
        "IFMarkInt" | "OFMarkInt" => Answer::Reply("Irrelevant".into()),
        // RFC 7144 §7.1.1: numerical minimum; RFC 7143 is level 1.
        "iSCSIProtocolLevel" => match number_in(value, 0, 31) {
            Some(n) => Answer::Reply(n.min(1).to_string()),
            None => reject(),
        },
        _ => Answer::Reply("NotUnderstood".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn neg(key: &str, value: &str) -> (Answer, SessionParams) {
        let limits = TargetLimits::default();
        let mut p = SessionParams::defaults(&limits);
        let a = negotiate(key, value, &limits, SessionType::Normal, &mut p);
        (a, p)
    }

    fn reply(s: &str) -> Answer {
        Answer::Reply(s.into())
    }

    #[test]
    fn defaults_follow_rfc() {
        let p = SessionParams::defaults(&TargetLimits::default());
        assert_eq!(p.max_xmit_data_segment_length, 8192);
        assert_eq!(p.max_burst_length, 262_144);
        assert_eq!(p.first_burst_length, 65_536);
        assert!(p.initial_r2t);
        assert!(p.immediate_data);
        assert_eq!(p.max_outstanding_r2t, 1);
        assert_eq!(p.header_digest, Digest::None);
    }

    #[test]
    fn digests_pick_first_acceptable() {
        let (a, p) = neg("HeaderDigest", "CRC32C,None");
        assert_eq!(a, reply("CRC32C"));
        assert_eq!(p.header_digest, Digest::Crc32c);
        let (a, p) = neg("DataDigest", "None,CRC32C");
        assert_eq!(a, reply("None"));
        assert_eq!(p.data_digest, Digest::None);
        let (a, _) = neg("DataDigest", "MD5");
        assert_eq!(a, reply("Reject"));
        let limits = TargetLimits {
            header_digest: DigestPolicy::REQUIRE_CRC32C,
            ..TargetLimits::default()
        };
        let mut p = SessionParams::defaults(&limits);
        let a = negotiate("HeaderDigest", "None", &limits, SessionType::Normal, &mut p);
        assert_eq!(a, reply("Reject"));
    }

    #[test]
    fn numeric_min_max() {
        assert_eq!(neg("MaxBurstLength", "16776192").0, reply("1048576"));
        assert_eq!(neg("MaxBurstLength", "4096").0, reply("4096"));
        assert_eq!(neg("FirstBurstLength", "8192").0, reply("8192"));
        assert_eq!(neg("MaxBurstLength", "511").0, reply("Reject"));
        assert_eq!(neg("MaxBurstLength", "16777216").0, reply("Reject"));
        assert_eq!(neg("MaxOutstandingR2T", "64").0, reply("8"));
        assert_eq!(neg("MaxOutstandingR2T", "0").0, reply("Reject"));
        assert_eq!(neg("DefaultTime2Wait", "0").0, reply("2"));
        assert_eq!(neg("DefaultTime2Retain", "20").0, reply("0"));
        assert_eq!(neg("ErrorRecoveryLevel", "2").0, reply("0"));
        assert_eq!(neg("ErrorRecoveryLevel", "3").0, reply("Reject"));
        assert_eq!(neg("MaxConnections", "8").0, reply("1"));
        assert_eq!(neg("iSCSIProtocolLevel", "2").0, reply("1"));
    }

    #[test]
    fn first_burst_never_exceeds_max_burst() {
        let limits = TargetLimits::default();
        let mut p = SessionParams::defaults(&limits);
        negotiate(
            "FirstBurstLength",
            "262144",
            &limits,
            SessionType::Normal,
            &mut p,
        );
        negotiate(
            "MaxBurstLength",
            "65536",
            &limits,
            SessionType::Normal,
            &mut p,
        );
        assert_eq!(p.max_burst_length, 65536);
        assert_eq!(p.first_burst_length, 65536);
    }

    #[test]
    fn booleans() {
        let (a, p) = neg("InitialR2T", "No");
        assert_eq!(a, reply("No"));
        assert!(!p.initial_r2t);
        assert_eq!(neg("InitialR2T", "Yes").0, reply("Yes"));
        assert_eq!(neg("ImmediateData", "Yes").0, reply("Yes"));
        let (a, p) = neg("ImmediateData", "No");
        assert_eq!(a, reply("No"));
        assert!(!p.immediate_data);
        assert_eq!(neg("DataPDUInOrder", "No").0, reply("Yes"));
        assert_eq!(neg("IFMarker", "Yes").0, reply("No"));
        assert_eq!(neg("ImmediateData", "maybe").0, reply("Reject"));
        let limits = TargetLimits {
            initial_r2t: true,
            immediate_data: false,
            ..TargetLimits::default()
        };
        let mut p = SessionParams::defaults(&limits);
        let a = negotiate("InitialR2T", "No", &limits, SessionType::Normal, &mut p);
        assert_eq!(a, reply("Yes"));
        let a = negotiate("ImmediateData", "Yes", &limits, SessionType::Normal, &mut p);
        assert_eq!(a, reply("No"));
    }

    #[test]
    fn declarative_and_special_values() {
        let (a, p) = neg("MaxRecvDataSegmentLength", "65536");
        assert_eq!(a, Answer::Silent);
        assert_eq!(p.max_xmit_data_segment_length, 65536);
        assert_eq!(
            neg("MaxRecvDataSegmentLength", "100").0,
            Answer::Fail(LoginStatus::INITIATOR_ERROR)
        );
        assert_eq!(neg("X-com.example.Foo", "1").0, reply("NotUnderstood"));
        assert_eq!(neg("FooBar", "1").0, reply("NotUnderstood"));
        assert_eq!(neg("InitiatorName", "iqn.x").0, Answer::NotOperational);
        assert_eq!(neg("CHAP_A", "5").0, Answer::NotOperational);
        assert_eq!(neg("MaxBurstLength", "NotUnderstood").0, Answer::Silent);
    }

    #[test]
    fn discovery_irrelevant_keys() {
        let limits = TargetLimits::default();
        let mut p = SessionParams::defaults(&limits);
        for k in [
            "InitialR2T",
            "ImmediateData",
            "MaxBurstLength",
            "FirstBurstLength",
        ] {
            let a = negotiate(k, "Yes", &limits, SessionType::Discovery, &mut p);
            assert_eq!(a, reply("Irrelevant"), "{k}");
        }
        let a = negotiate(
            "HeaderDigest",
            "None",
            &limits,
            SessionType::Discovery,
            &mut p,
        );
        assert_eq!(a, reply("None"));
    }
}
