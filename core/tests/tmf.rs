//! Task management with "safe" semantics, and the races that matter: abort
//! while data-out is pending, while the backend is busy, while the status is
//! being sent; LUN reset with queued ORDERED commands; CLEAR TASK SET with TAS.
mod common;
use common::*;
use rscst_core::{
    Access, DataDirection, GroupId, HandleError, LuConfig, Lun, RamBackend, Rejected, ScsiStatus,
    TaskAttr, TmfFunction, TmfResponseCode, TransferError,
};

/// Two thin RAM LUs (LUN 0 and 1) behind a backend whose I/O can be held.
fn slow_target() -> (H<Slow<RamB>>, Vec<rscst_core::LuId>) {
    let m0 = mem(256 * 512, 0x4000_0000);
    let m1 = mem(256 * 512, 0x5000_0000);
    let mut ram: RamB = RamBackend::new();
    let a = ram.add_lun(m0, 512).unwrap();
    let b = ram.add_lun(m1, 512).unwrap();
    let mut h = H::new(Slow::new(ram), 512 * 1024, &[m0, m1]);
    let mut lus = Vec::new();
    for (n, id) in [(0u16, a), (1, b)] {
        let lu = h.t.add_lu(&LuConfig::new(id, 512, 256)).unwrap();
        h.t.map_lun(
            GroupId::DEFAULT,
            Lun::single_level(n).unwrap(),
            lu,
            Access::ReadWrite,
        )
        .unwrap();
        lus.push(lu);
    }
    (h, lus)
}

fn login2(h: &mut H<Slow<RamB>>, name: &str) -> rscst_core::SessionHandle {
    let s = h.login_clean(name, 0);
    h.cmd(s, 1, &TUR);
    s
}

fn tag_of(h: &H<Slow<RamB>>, c: rscst_core::CmdHandle) -> rscst_core::TaskTag {
    h.tr.log
        .iter()
        .find_map(|e| match e {
            Ev::DataIn { cmd, .. }
            | Ev::DataOut { cmd, .. }
            | Ev::Status { cmd, .. }
            | Ev::Aborted { cmd }
                if cmd.handle == c =>
            {
                Some(cmd.tag)
            }
            _ => None,
        })
        .expect("the command reached the transport")
}

#[test]
fn abort_task_while_data_out_is_pending() {
    let (mut h, _) = slow_target();
    let s = login2(&mut h, "iqn.t:a");
    h.auto = false;
    let before = lun_bytes_of(&h, 0, 10, 4);
    let w = h.submit(s, 0, &wr10(10, 4), DataDirection::Out, 2048, &[0xee; 2048]);
    h.settle();
    assert!(
        matches!(h.take_for(w), Some(Ev::DataOut { .. })),
        "XFER_RDY out"
    );
    let tag = tag_of(&h, w);
    let t = h.tmf(s, 0, TmfFunction::AbortTask(tag));
    h.settle();
    assert!(h.aborted_pending(w), "the transport is told at once");
    assert_eq!(
        h.pending_tmfs(),
        0,
        "no response while the exchange may still DMA"
    );
    // A late completion of the transfer is ignored.
    assert_eq!(h.t.data_out_done(w, Ok(())), Ok(()));
    h.settle();
    assert_eq!(h.pending_tmfs(), 0);
    h.complete_for(w);
    h.settle();
    assert_eq!(h.pending_tmfs(), 1);
    h.complete_all();
    assert_eq!(h.tmf_result(t).code, TmfResponseCode::FunctionComplete);
    assert!(h.result(w).aborted);
    // The slot is gone: a stale completion is refused, never aliased.
    assert_eq!(h.t.data_out_done(w, Ok(())), Err(HandleError::Stale));
    assert_eq!(lun_bytes_of(&h, 0, 10, 4), before, "nothing was committed");
    // The response came after abort_done in the transport's log.
    let ai =
        h.tr.log
            .iter()
            .position(|e| matches!(e, Ev::Aborted { .. }))
            .unwrap();
    let ti =
        h.tr.log
            .iter()
            .position(|e| matches!(e, Ev::Tmf { .. }))
            .unwrap();
    assert!(ai < ti);
}

fn lun_bytes_of(h: &H<Slow<RamB>>, lun: u32, lba: u64, blocks: u64) -> Vec<u8> {
    let m =
        h.b.inner
            .memory(rscst_core::backend::BackendLun(lun))
            .unwrap();
    let mut out = vec![0u8; (blocks * 512) as usize];
    rscst_core::Memory::read(m, (lba * 512) as usize, &mut out).unwrap();
    out
}

#[test]
fn abort_task_while_the_backend_is_busy() {
    let (mut h, _) = slow_target();
    let s = login2(&mut h, "iqn.t:a");
    h.b.hold = true;
    let r = h.submit(s, 0, &rd10(0, 8), DataDirection::In, 4096, &[]);
    h.settle();
    assert_eq!(h.t.cmd_state(r), Some(rscst_core::CmdState::Backend));
    // ABORT TASK SET names no tag and catches it.
    let t = h.tmf(s, 0, TmfFunction::AbortTaskSet);
    h.settle();
    assert!(
        !h.touched(r),
        "nothing to tell the transport while the I/O runs"
    );
    assert!(h.tmf_done.is_empty());
    h.b.release();
    h.settle();
    assert!(
        h.result(r).aborted,
        "aborted once the backend finished, never sent"
    );
    assert!(
        !h.tr
            .log
            .iter()
            .any(|e| matches!(e, Ev::DataIn { cmd, .. } if cmd.handle == r))
    );
    assert_eq!(h.tmf_result(t).code, TmfResponseCode::FunctionComplete);
}

#[test]
fn abort_task_while_the_status_is_being_sent() {
    let (mut h, _) = slow_target();
    let s = login2(&mut h, "iqn.t:a");
    h.auto = false;
    let r = h.submit(s, 0, &rd10(0, 1), DataDirection::In, 512, &[]);
    h.settle();
    assert_eq!(h.t.cmd_state(r), Some(rscst_core::CmdState::ResponseSent));
    let tag = tag_of(&h, r);
    let t = h.tmf(s, 0, TmfFunction::AbortTask(tag));
    h.settle();
    assert!(
        !h.aborted_pending(r),
        "a command whose status is queued is not aborted"
    );
    assert_eq!(h.pending_tmfs(), 0, "but the response waits for it");
    h.complete_for(r);
    h.settle();
    h.complete_all();
    assert_eq!(h.tmf_result(t).code, TmfResponseCode::FunctionComplete);
    h.result(r).good();
}

#[test]
fn abort_task_of_unknown_and_dormant_tasks() {
    let (mut h, _) = slow_target();
    let s = login2(&mut h, "iqn.t:a");
    let t = h.tmf(s, 0, TmfFunction::AbortTask(rscst_core::TaskTag(999)));
    h.settle();
    assert_eq!(h.tmf_result(t).code, TmfResponseCode::FunctionComplete);
    // A dormant ORDERED task behind a held one.
    h.b.hold = true;
    let a = h.submit(s, 0, &rd10(0, 1), DataDirection::In, 512, &[]);
    let o = h.submit_attr(
        s,
        0,
        TaskAttr::Ordered,
        &rd10(1, 1),
        DataDirection::In,
        512,
        &[],
    );
    h.settle();
    assert_eq!(h.t.cmd_state(o), Some(rscst_core::CmdState::Dormant));
    // Its tag is the harness's counter: the last one issued.
    let tag = rscst_core::TaskTag(h.tag().0 - 1);
    let t = h.tmf(s, 0, TmfFunction::AbortTask(tag));
    h.settle();
    assert!(h.result(o).aborted);
    assert_eq!(h.tmf_result(t).code, TmfResponseCode::FunctionComplete);
    h.b.release();
    h.settle();
    h.result(a).good();
}

#[test]
fn lun_reset_with_queued_ordered_commands() {
    let (mut h, _) = slow_target();
    let a = login2(&mut h, "iqn.t:a");
    let b = login2(&mut h, "iqn.t:b");
    h.cmd(a, 0, &[0x16, 0, 0, 0, 0, 0]).good(); // RESERVE(6) by a
    h.b.hold = true;
    let s1 = h.submit(a, 0, &rd10(0, 1), DataDirection::In, 512, &[]);
    let o1 = h.submit_attr(
        a,
        0,
        TaskAttr::Ordered,
        &wr10(2, 1),
        DataDirection::Out,
        512,
        &[1; 512],
    );
    let s2 = h.submit(a, 0, &rd10(3, 1), DataDirection::In, 512, &[]);
    h.settle();
    assert_eq!(h.t.cmd_state(s1), Some(rscst_core::CmdState::Backend));
    assert_eq!(h.t.cmd_state(o1), Some(rscst_core::CmdState::Dormant));
    assert_eq!(h.t.cmd_state(s2), Some(rscst_core::CmdState::Dormant));
    let t = h.tmf(b, 0, TmfFunction::LogicalUnitReset);
    h.settle();
    assert!(
        h.result(o1).aborted && h.result(s2).aborted,
        "dormant tasks go at once"
    );
    assert!(
        h.tmf_done.is_empty(),
        "the reset waits for the task in the backend"
    );
    // A command arriving during the reset is held, then sees the reset.
    let late = h.submit(b, 0, &TUR, DataDirection::None, 0, &[]);
    h.settle();
    assert!(h.outcome(late).is_none());
    h.b.release();
    h.settle();
    assert!(h.result(s1).aborted);
    assert_eq!(h.tmf_result(t).code, TmfResponseCode::FunctionComplete);
    h.result(late).check(0x6, 0x29, 0x03);
    h.b.hold = false;
    // Every nexus gets the reset UA; the LU on LUN 1 did not reset.
    h.cmd(a, 0, &TUR).check(0x6, 0x29, 0x03);
    h.cmd(a, 1, &TUR).good();
    // The reservation is gone, the ORDERED write never happened.
    h.cmd(b, 0, &[0x16, 0, 0, 0, 0, 0]).good();
    assert_eq!(lun_bytes_of(&h, 0, 2, 1), vec![0; 512]);
}

#[test]
fn clear_task_set_with_tas() {
    let (mut h, _) = slow_target();
    let a = login2(&mut h, "iqn.t:a");
    let b = login2(&mut h, "iqn.t:b");
    set_control(&mut h, a, true, 0);
    h.cmd(b, 0, &TUR).check(0x6, 0x2a, 0x01);
    h.b.hold = true;
    let ra = h.submit(a, 0, &rd10(0, 1), DataDirection::In, 512, &[]);
    let rb = h.submit(b, 0, &rd10(1, 1), DataDirection::In, 512, &[]);
    let ob = h.submit_attr(
        b,
        0,
        TaskAttr::Ordered,
        &rd10(2, 1),
        DataDirection::In,
        512,
        &[],
    );
    let other_lu = h.submit(b, 1, &rd10(0, 1), DataDirection::In, 512, &[]);
    h.settle();
    let t = h.tmf(a, 0, TmfFunction::ClearTaskSet);
    h.settle();
    // The dormant task of the other nexus: TASK ABORTED at once.
    h.result(ob).status(ScsiStatus::TaskAborted);
    assert!(h.tmf_done.is_empty());
    h.b.release();
    h.settle();
    // Own nexus: aborted silently; other nexus: TASK ABORTED status.
    assert!(h.result(ra).aborted);
    let o = h.result(rb);
    assert!(!o.aborted);
    o.status(ScsiStatus::TaskAborted);
    assert!(o.sense.is_empty());
    h.result(other_lu).good();
    assert_eq!(h.tmf_result(t).code, TmfResponseCode::FunctionComplete);
    h.b.hold = false;
    h.cmd(b, 0, &TUR).good();
}

#[test]
fn clear_task_set_without_tas_leaves_a_unit_attention() {
    let (mut h, _) = slow_target();
    let a = login2(&mut h, "iqn.t:a");
    let b = login2(&mut h, "iqn.t:b");
    let c = login2(&mut h, "iqn.t:c");
    h.b.hold = true;
    let rb = h.submit(b, 0, &rd10(1, 1), DataDirection::In, 512, &[]);
    h.settle();
    let t = h.tmf(a, 0, TmfFunction::ClearTaskSet);
    h.settle();
    h.b.release();
    h.settle();
    assert!(h.result(rb).aborted);
    assert_eq!(h.tmf_result(t).code, TmfResponseCode::FunctionComplete);
    h.b.hold = false;
    h.cmd(b, 0, &TUR).check(0x6, 0x2f, 0x00);
    h.cmd(b, 0, &TUR).good();
    h.cmd(c, 0, &TUR).good();
    h.cmd(a, 0, &TUR).good();
}

#[test]
fn abort_task_set_only_touches_its_nexus() {
    let (mut h, _) = slow_target();
    let a = login2(&mut h, "iqn.t:a");
    let b = login2(&mut h, "iqn.t:b");
    h.b.hold = true;
    let ra = h.submit(a, 0, &rd10(0, 1), DataDirection::In, 512, &[]);
    let ra1 = h.submit(a, 1, &rd10(0, 1), DataDirection::In, 512, &[]);
    let rb = h.submit(b, 0, &rd10(1, 1), DataDirection::In, 512, &[]);
    h.settle();
    let t = h.tmf(a, 0, TmfFunction::AbortTaskSet);
    h.settle();
    h.b.release();
    h.settle();
    assert!(h.result(ra).aborted);
    h.result(ra1).good();
    h.result(rb).good();
    assert_eq!(h.tmf_result(t).code, TmfResponseCode::FunctionComplete);
    h.b.hold = false;
    h.cmd(b, 0, &TUR).good();
}

#[test]
fn i_t_nexus_reset() {
    let (mut h, _) = slow_target();
    let a = login2(&mut h, "iqn.t:a");
    let b = login2(&mut h, "iqn.t:b");
    h.cmd(a, 1, &[0x16, 0, 0, 0, 0, 0]).good();
    h.b.hold = true;
    let ra = h.submit(a, 0, &rd10(0, 1), DataDirection::In, 512, &[]);
    let ra1 = h.submit(a, 1, &rd10(0, 1), DataDirection::In, 512, &[]);
    let rb = h.submit(b, 0, &rd10(1, 1), DataDirection::In, 512, &[]);
    h.settle();
    let t = h.tmf(a, 5, TmfFunction::ItNexusReset);
    h.settle();
    h.b.release();
    h.settle();
    assert!(h.result(ra).aborted && h.result(ra1).aborted);
    h.result(rb).good();
    assert_eq!(h.tmf_result(t).code, TmfResponseCode::FunctionComplete);
    h.b.hold = false;
    h.cmd(a, 0, &TUR).check(0x6, 0x29, 0x07);
    h.cmd(a, 1, &TUR).check(0x6, 0x29, 0x07);
    h.cmd(b, 0, &TUR).good();
    h.cmd(b, 1, &[0x16, 0, 0, 0, 0, 0]).good(); // the reservation was released
}

#[test]
fn target_reset() {
    let (mut h, _) = slow_target();
    let a = login2(&mut h, "iqn.t:a");
    let b = login2(&mut h, "iqn.t:b");
    h.b.hold = true;
    let ra = h.submit(a, 0, &rd10(0, 1), DataDirection::In, 512, &[]);
    let rb = h.submit(b, 1, &rd10(1, 1), DataDirection::In, 512, &[]);
    let un = h.submit(
        b,
        9,
        &[0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0],
        DataDirection::In,
        16,
        &[],
    );
    h.settle();
    h.result(un).good();
    let t = h.tmf(b, 0, TmfFunction::TargetReset);
    h.settle();
    h.b.release();
    h.settle();
    assert!(h.result(ra).aborted && h.result(rb).aborted);
    assert_eq!(h.tmf_result(t).code, TmfResponseCode::FunctionComplete);
    h.b.hold = false;
    for s in [a, b] {
        for lun in [0, 1] {
            h.cmd(s, lun, &TUR).check(0x6, 0x29, 0x00);
            h.cmd(s, lun, &TUR).good();
        }
    }
}

#[test]
fn query_task_task_set_and_asynchronous_event() {
    let (mut h, lus) = slow_target();
    let a = login2(&mut h, "iqn.t:a");
    let b = login2(&mut h, "iqn.t:b");
    h.b.hold = true;
    let r = h.submit(a, 0, &rd10(0, 1), DataDirection::In, 512, &[]);
    let tag = rscst_core::TaskTag(h.tag().0 - 1);
    h.settle();
    let q = |h: &mut H<Slow<RamB>>, s, lun, f| {
        let t = h.tmf(s, lun, f);
        h.settle();
        h.tmf_result(t)
    };
    assert_eq!(
        q(&mut h, a, 0, TmfFunction::QueryTask(tag)).code,
        TmfResponseCode::FunctionSucceeded
    );
    assert_eq!(
        q(
            &mut h,
            a,
            0,
            TmfFunction::QueryTask(rscst_core::TaskTag(77))
        )
        .code,
        TmfResponseCode::FunctionComplete
    );
    assert_eq!(
        q(&mut h, b, 0, TmfFunction::QueryTask(tag)).code,
        TmfResponseCode::FunctionComplete
    );
    assert_eq!(
        q(&mut h, a, 0, TmfFunction::QueryTaskSet).code,
        TmfResponseCode::FunctionSucceeded
    );
    assert_eq!(
        q(&mut h, a, 1, TmfFunction::QueryTaskSet).code,
        TmfResponseCode::FunctionComplete
    );
    assert_eq!(
        q(&mut h, b, 0, TmfFunction::QueryTaskSet).code,
        TmfResponseCode::FunctionComplete
    );
    h.b.release();
    h.settle();
    h.result(r).good();
    h.b.hold = false;
    // QUERY ASYNCHRONOUS EVENT reports a pending UA without clearing it.
    let resp = q(&mut h, a, 0, TmfFunction::QueryAsynchronousEvent);
    assert_eq!(resp.code, TmfResponseCode::FunctionComplete);
    h.t.resize_lu(lus[0], 200).unwrap();
    let resp = q(&mut h, a, 0, TmfFunction::QueryAsynchronousEvent);
    assert_eq!(resp.code, TmfResponseCode::FunctionSucceeded);
    assert_eq!(resp.additional_info, [0x16, 0x2a, 0x09]);
    h.cmd(a, 0, &TUR).check(0x6, 0x2a, 0x09);
    assert_eq!(
        q(&mut h, a, 0, TmfFunction::QueryAsynchronousEvent).code,
        TmfResponseCode::FunctionComplete
    );
}

#[test]
fn tmf_on_an_unmapped_lun_and_pool_limits() {
    let (mut h, _) = slow_target();
    let a = login2(&mut h, "iqn.t:a");
    for f in [
        TmfFunction::LogicalUnitReset,
        TmfFunction::AbortTaskSet,
        TmfFunction::ClearTaskSet,
        TmfFunction::QueryTaskSet,
    ] {
        let t = h.tmf(a, 7, f);
        h.settle();
        assert_eq!(h.tmf_result(t).code, TmfResponseCode::IncorrectLun, "{f}");
    }
    // Eight TMF slots; the ninth is refused while they wait.
    h.auto = false;
    for _ in 0..rscst_core::MAX_TMFS {
        h.tmf(a, 0, TmfFunction::QueryTaskSet);
    }
    let tag = h.tag();
    let r = h.t.submit_tmf(&rscst_core::TmfRequest {
        session: a,
        tag,
        lun: Lun::ZERO,
        function: TmfFunction::QueryTaskSet,
    });
    assert_eq!(r, Err(Rejected::Busy));
    // Busy answers to the responses are retried.
    h.tr.busy = 3;
    h.settle();
    h.settle();
    h.auto = true;
    h.settle();
    assert_eq!(h.tmf_done.len(), rscst_core::MAX_TMFS);
    assert!(h.tr.busy_answers >= 3);
}

#[test]
fn clear_aca_tmf() {
    let (mut h, _) = slow_target();
    let a = login2(&mut h, "iqn.t:a");
    let b = login2(&mut h, "iqn.t:b");
    // NACA=1 on a failing command establishes ACA.
    h.read_cmd(a, 0, &[0x28, 0, 0, 0, 1, 0, 0, 0, 1, 0x04], 512)
        .check(0x5, 0x21, 0x00);
    h.cmd(a, 0, &TUR).status(ScsiStatus::AcaActive);
    let t = h.tmf(b, 0, TmfFunction::ClearAca);
    h.settle();
    assert_eq!(
        h.tmf_result(t).code,
        TmfResponseCode::FunctionRejected,
        "only the faulted nexus clears it"
    );
    let t = h.tmf(a, 0, TmfFunction::ClearAca);
    h.settle();
    assert_eq!(h.tmf_result(t).code, TmfResponseCode::FunctionComplete);
    h.cmd(a, 0, &TUR).good();
    h.cmd(b, 0, &TUR).good();
}

#[test]
fn session_removal_aborts_and_remembers() {
    let (mut h, _) = slow_target();
    let a = login2(&mut h, "iqn.t:a");
    h.b.hold = true;
    let r = h.submit(a, 0, &rd10(0, 1), DataDirection::In, 512, &[]);
    let w = h.submit(a, 1, &wr10(0, 1), DataDirection::Out, 512, &[1; 512]);
    h.settle();
    h.t.remove_session(a).unwrap();
    assert_eq!(h.t.remove_session(a), Err(HandleError::Stale));
    let tag = h.tag();
    assert_eq!(
        h.t.submit(&rscst_core::CommandRequest {
            session: a,
            tag,
            lun: Lun::ZERO,
            attr: TaskAttr::Simple,
            priority: 0,
            crn: 0,
            cdb: &TUR,
            expected_len: 0,
            dir: DataDirection::None,
        }),
        Err(Rejected::UnknownSession)
    );
    h.b.release();
    h.settle();
    assert!(h.result(r).aborted && h.result(w).aborted);
    assert_eq!(h.t.active_commands(), 0);
    h.b.hold = false;
    // The same initiator port returns: I_T NEXUS LOSS OCCURRED; another: POWER ON.
    let a2 = h.login("iqn.t:a");
    h.cmd(a2, 0, &TUR).check(0x6, 0x29, 0x07);
    h.cmd(a2, 1, &TUR).check(0x6, 0x29, 0x07);
    let c = h.login("iqn.t:c");
    h.cmd(c, 0, &TUR).check(0x6, 0x29, 0x00);
}

#[test]
fn session_removal_drops_its_pending_tmfs() {
    let (mut h, _) = slow_target();
    let a = login2(&mut h, "iqn.t:a");
    let b = login2(&mut h, "iqn.t:b");
    h.b.hold = true;
    let r = h.submit(a, 0, &rd10(0, 1), DataDirection::In, 512, &[]);
    h.settle();
    // A's TMF waits for its read (held in the backend); B's is unaffected.
    let ta = h.tmf(a, 0, TmfFunction::AbortTaskSet);
    let tb = h.tmf(b, 0, TmfFunction::AbortTaskSet);
    h.settle();
    assert_eq!(h.tmf_result(tb).code, TmfResponseCode::FunctionComplete);
    h.t.remove_session(a).unwrap();
    h.settle();
    assert!(
        h.tr.dropped.is_empty(),
        "not before the command it affects has finished"
    );
    h.b.release();
    h.settle();
    assert!(h.result(r).aborted);
    assert_eq!(h.tr.dropped.len(), 1, "{:?}", h.tr.dropped);
    let d = h.tr.dropped[0];
    assert_eq!((d.handle, d.session), (ta, a));
    assert!(
        !h.tr
            .log
            .iter()
            .any(|e| matches!(e, Ev::Tmf { tmf, .. } if tmf.handle == ta)),
        "no response for the dropped TMF"
    );
    // Its slot is free again: every TMF slot can be used.
    let hs: Vec<_> = (0..rscst_core::MAX_TMFS)
        .map(|_| h.tmf(b, 0, TmfFunction::QueryTaskSet))
        .collect();
    h.settle();
    for t in hs {
        h.tmf_result(t);
    }
    assert_eq!(h.tr.dropped.len(), 1);
}

#[test]
fn transfer_errors_end_the_command_as_aborted() {
    let (mut h, _) = slow_target();
    let a = login2(&mut h, "iqn.t:a");
    h.auto = false;
    let w = h.submit(a, 0, &wr10(0, 1), DataDirection::Out, 512, &[1; 512]);
    h.settle();
    assert!(matches!(h.take_for(w), Some(Ev::DataOut { .. })));
    h.t.data_out_done(w, Err(TransferError::Aborted)).unwrap();
    h.settle();
    assert!(h.aborted_pending(w));
    h.complete_for(w);
    assert!(h.result(w).aborted);
    // A completion the command is not waiting for is refused.
    let r = h.submit(a, 0, &rd10(0, 1), DataDirection::In, 512, &[]);
    h.settle();
    assert_eq!(h.t.data_out_done(r, Ok(())), Err(HandleError::WrongState));
    assert_eq!(h.t.abort_done(r), Err(HandleError::WrongState));
    h.complete_for(r);
    h.result(r).good();
}
