//! Property tests: random CDBs never panic the core and always get an
//! answer; random interleavings of commands, task management, Busy answers,
//! held backend I/O, nexus loss and out-of-order completions keep the
//! invariants (one outcome per command, every slot and buffer returned).
mod common;
use common::*;
use proptest::prelude::*;
use rscst_core::{
    Access, DataDirection, GroupId, LuConfig, Lun, RamBackend, TaskAttr, TaskTag, TmfFunction,
};

fn chaos_target() -> H<Slow<RamB>> {
    let m0 = mem(128 * 512, 0x4000_0000);
    let m1 = mem(128 * 512, 0x5000_0000);
    let mut ram: RamB = RamBackend::new();
    let a = ram.add_lun(m0, 512).unwrap();
    let bits: &'static mut [u32] = Box::leak(vec![0u32; 4].into_boxed_slice());
    let b = ram.add_thin_lun(m1, 512, bits, 1).unwrap();
    // A small pool (32 KiB) so that commands wait for buffers.
    let mut h = H::new(Slow::new(ram), 32 * 1024, &[m0, m1]);
    let lu0 = h.t.add_lu(&LuConfig::new(a, 512, 128)).unwrap();
    let mut c1 = LuConfig::new(b, 512, 128);
    c1.thin = true;
    c1.removable = true;
    let lu1 = h.t.add_lu(&c1).unwrap();
    h.t.map_lun(GroupId::DEFAULT, Lun::ZERO, lu0, Access::ReadWrite)
        .unwrap();
    h.t.map_lun(
        GroupId::DEFAULT,
        Lun::single_level(1).unwrap(),
        lu1,
        Access::ReadWrite,
    )
    .unwrap();
    h
}

/// Valid CDBs that exercise every data path, plus the odd one out.
fn cdbs() -> Vec<(Vec<u8>, DataDirection, u32)> {
    let mut caw = vec![0u8; 16];
    caw[0] = 0x89;
    caw[9] = 3;
    caw[13] = 2;
    let mut ws16 = vec![0u8; 16];
    ws16[0] = 0x93;
    ws16[1] = 0x08;
    ws16[9] = 8;
    ws16[13] = 4;
    let mut unmap_list = vec![0, 22, 0, 16, 0, 0, 0, 0];
    unmap_list.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0, 4, 0, 0, 0, 0]);
    let _ = unmap_list;
    vec![
        (rd10(0, 8).to_vec(), DataDirection::In, 4096),
        (rd10(100, 20).to_vec(), DataDirection::In, 10240),
        (wr10(4, 4).to_vec(), DataDirection::Out, 2048),
        (wr16(120, 8).to_vec(), DataDirection::Out, 4096),
        (TUR.to_vec(), DataDirection::None, 0),
        (vec![0x12, 0, 0, 0, 96, 0], DataDirection::In, 96),
        (vec![0x1a, 0, 0x3f, 0, 255, 0], DataDirection::In, 255),
        (
            vec![0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0],
            DataDirection::In,
            256,
        ),
        (vec![0x03, 0, 0, 0, 18, 0], DataDirection::In, 18),
        (caw, DataDirection::Out, 2048),
        (ws16, DataDirection::Out, 512),
        (
            vec![0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0],
            DataDirection::Out,
            24,
        ),
        (
            vec![0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            DataDirection::None,
            0,
        ),
        (
            vec![0x2f, 0x02, 0, 0, 0, 0, 0, 0, 2, 0],
            DataDirection::Out,
            1024,
        ),
        (vec![0x16, 0, 0, 0, 0, 0], DataDirection::None, 0),
        (vec![0x17, 0, 0, 0, 0, 0], DataDirection::None, 0),
        (
            vec![0x9e, 0x12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0],
            DataDirection::In,
            4096,
        ),
        (rd10(127, 2).to_vec(), DataDirection::In, 1024), // beyond the end
        (vec![0xff, 0, 0, 0, 0, 0], DataDirection::None, 0),
    ]
}

#[derive(Clone, Debug)]
enum Act {
    Submit {
        s: usize,
        lun: u16,
        cmd: usize,
        attr: u8,
    },
    Tmf {
        s: usize,
        lun: u16,
        f: u8,
        back: u8,
    },
    Complete(usize),
    Poll,
    Busy(u8),
    Hold(bool),
    Release,
    Relogin(usize),
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        6 => (0..3usize, 0..3u16, 0..19usize, 0..8u8).prop_map(|(s, lun, cmd, attr)| Act::Submit { s, lun, cmd, attr }),
        1 => (0..3usize, 0..2u16, 0..10u8, 0..8u8).prop_map(|(s, lun, f, back)| Act::Tmf { s, lun, f, back }),
        6 => (0..16usize).prop_map(Act::Complete),
        3 => Just(Act::Poll),
        1 => (1..4u8).prop_map(Act::Busy),
        1 => any::<bool>().prop_map(Act::Hold),
        2 => Just(Act::Release),
        1 => (0..3usize).prop_map(Act::Relogin),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_cdbs_are_answered(bytes in proptest::collection::vec(any::<u8>(), 16), len in 0u32..8192, dir in 0u8..3, lun in 0u16..3) {
        let mut h = chaos_target();
        let s = h.login("iqn.t:fuzz");
        let dir = [DataDirection::None, DataDirection::In, DataDirection::Out][usize::from(dir)];
        let out = vec![0x5au8; len as usize];
        let c = h.submit(s, lun, &bytes, dir, len, &out);
        for _ in 0..50 {
            h.settle();
            h.b.release();
        }
        let o = h.result(c);
        prop_assert!(!o.aborted);
        prop_assert!(o.data.len() as u32 <= len || dir != DataDirection::In);
        prop_assert_eq!(h.t.active_commands(), 0);
        prop_assert_eq!(h.t.buffer_pool().free_chunks(), h.t.buffer_pool().chunks());
    }

    #[test]
    fn random_interleavings_keep_the_invariants(acts in proptest::collection::vec(act(), 1..120)) {
        let mut h = chaos_target();
        h.auto = false;
        let table = cdbs();
        let names = ["iqn.t:a", "iqn.t:b", "iqn.t:c"];
        let mut sessions: Vec<_> = names.iter().map(|n| h.login(n)).collect();
        let mut submitted = Vec::new();
        let mut tmfs = Vec::new();
        let mut tags: Vec<Vec<TaskTag>> = vec![Vec::new(); 3];
        for a in acts {
            match a {
                Act::Submit { s, lun, cmd, attr } => {
                    let (cdb, dir, len) = &table[cmd];
                    let attr = match attr { 0 => TaskAttr::Ordered, 1 => TaskAttr::HeadOfQueue, 2 => TaskAttr::Aca, _ => TaskAttr::Simple };
                    let out = vec![0xa5u8; *len as usize];
                    let tag = h.tag();
                    let req = rscst_core::CommandRequest {
                        session: sessions[s], tag, lun: Lun::single_level(lun).unwrap(), attr,
                        priority: 0, crn: 0, cdb, expected_len: *len, dir: *dir,
                    };
                    if let Ok(c) = h.t.submit(&req) {
                        h.outs.insert(c.to_u32(), out);
                        submitted.push(c);
                        tags[s].push(tag);
                    }
                }
                Act::Tmf { s, lun, f, back } => {
                    let tag = tags[s].iter().rev().nth(usize::from(back)).copied().unwrap_or(TaskTag(0));
                    let f = match f {
                        0 => TmfFunction::AbortTask(tag),
                        1 => TmfFunction::AbortTaskSet,
                        2 => TmfFunction::ClearTaskSet,
                        3 => TmfFunction::ClearAca,
                        4 => TmfFunction::LogicalUnitReset,
                        5 => TmfFunction::TargetReset,
                        6 => TmfFunction::ItNexusReset,
                        7 => TmfFunction::QueryTask(tag),
                        8 => TmfFunction::QueryTaskSet,
                        _ => TmfFunction::QueryAsynchronousEvent,
                    };
                    let t = h.tmf_try(sessions[s], lun, f);
                    if let Some(t) = t {
                        tmfs.push(t);
                    }
                }
                Act::Complete(k) => {
                    if !h.tr.pending.is_empty() {
                        let k = k % h.tr.pending.len();
                        let ev = h.tr.pending.remove(k).unwrap();
                        h.complete(ev);
                    }
                }
                Act::Poll => {
                    h.poll();
                }
                Act::Busy(n) => h.tr.busy = u32::from(n),
                Act::Hold(on) => h.b.hold = on,
                Act::Release => h.b.release(),
                Act::Relogin(s) => {
                    // Nexus loss, then a new login (when a slot is free:
                    // a removed nexus keeps its slot until its commands end).
                    h.t.remove_session(sessions[s]).unwrap();
                    let id = rscst_core::TransportId::iscsi(names[s], None).unwrap();
                    match h.t.create_session(&id, rscst_core::RelativePortId(1)) {
                        Ok(n) => sessions[s] = n,
                        Err(rscst_core::SessionError::Full) => {
                            // Come back once the old nexus has drained.
                            h.auto = true;
                            h.b.hold = false;
                            for _ in 0..20 {
                                h.b.release();
                                h.settle();
                            }
                            h.auto = false;
                            sessions[s] = h.t.create_session(&id, rscst_core::RelativePortId(1)).unwrap();
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        }
        // Drain: everything completes.
        h.auto = true;
        h.tr.busy = 0;
        h.b.hold = false;
        for _ in 0..100 {
            h.b.release();
            h.settle();
        }
        for c in &submitted {
            prop_assert!(h.done.contains_key(&c.to_u32()), "{} has an outcome", c);
        }
        prop_assert_eq!(h.done.len(), submitted.len());
        prop_assert_eq!(h.t.active_commands(), 0);
        prop_assert_eq!(h.t.buffer_pool().free_chunks(), h.t.buffer_pool().chunks());
        prop_assert!(h.tr.pending.is_empty());
        // Every TMF of a nexus still logged in was answered.
        let live: Vec<_> = tmfs.iter().filter(|(_, s)| sessions.contains(s)).collect();
        for (t, _) in live {
            prop_assert!(h.tmf_done.contains_key(&t.to_u32()), "{} answered", t);
        }
        // The target still works.
        let s = sessions[0];
        let o = h.exec(s, 0, &TUR, DataDirection::None, 0, &[]);
        prop_assert!(o.kcq().is_none_or(|k| k.0 == 0x6 || k.0 == 0x2), "{:?}", o);
    }
}
