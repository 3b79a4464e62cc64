//! Task set: SAM-5 attribute ordering, pool exhaustion (TASK SET FULL /
//! BUSY, never a dropped command), ACA, QErr, and Busy back-pressure.
mod common;
use common::*;
use rscst_core::{
    Access, CmdState, DataDirection, GroupId, LuConfig, Lun, RamBackend, Rejected, ScsiStatus,
    TaskAttr, TaskTag, TmfFunction, TmfResponseCode,
};

fn slow_target() -> H<Slow<RamB>> {
    let m0 = mem(256 * 512, 0x4000_0000);
    let mut ram: RamB = RamBackend::new();
    let a = ram.add_lun(m0, 512).unwrap();
    let mut h = H::new(Slow::new(ram), 512 * 1024, &[m0]);
    let lu = h.t.add_lu(&LuConfig::new(a, 512, 256)).unwrap();
    h.t.map_lun(GroupId::DEFAULT, Lun::ZERO, lu, Access::ReadWrite)
        .unwrap();
    h
}

/// Index of the first transport call about `c` in the log.
fn first_call(h: &H<Slow<RamB>>, c: rscst_core::CmdHandle) -> usize {
    h.tr.log
        .iter()
        .position(|e| e.cmd() == Some(c))
        .expect("reached the transport")
}

#[test]
fn ordered_waits_for_older_tasks_and_younger_ones_wait_for_it() {
    let mut h = slow_target();
    let s = h.login_clean("iqn.t:a", 0);
    h.b.hold = true;
    let s1 = h.submit(s, 0, &rd10(0, 1), DataDirection::In, 512, &[]);
    let s2 = h.submit(s, 0, &rd10(1, 1), DataDirection::In, 512, &[]);
    let o = h.submit_attr(
        s,
        0,
        TaskAttr::Ordered,
        &wr10(2, 1),
        DataDirection::Out,
        512,
        &[7; 512],
    );
    let s3 = h.submit(s, 0, &rd10(2, 1), DataDirection::In, 512, &[]);
    h.settle();
    assert_eq!(h.t.cmd_state(s1), Some(CmdState::Backend));
    assert_eq!(h.t.cmd_state(s2), Some(CmdState::Backend));
    assert_eq!(h.t.cmd_state(o), Some(CmdState::Dormant));
    assert_eq!(h.t.cmd_state(s3), Some(CmdState::Dormant));
    h.b.release();
    h.settle();
    // The older tasks completed, the ORDERED write runs, S3 still waits.
    h.result(s1).good();
    h.result(s2).good();
    assert_eq!(h.t.cmd_state(s3), Some(CmdState::Dormant));
    h.b.release();
    h.settle();
    h.result(o).good();
    h.b.release();
    h.settle();
    // S3 read what the ORDERED write wrote.
    h.result(s3).good().data(&[7; 512]);
    assert!(first_call(&h, o) < first_call(&h, s3));
}

#[test]
fn head_of_queue_runs_at_once_and_blocks_younger_tasks() {
    let mut h = slow_target();
    let s = h.login_clean("iqn.t:a", 0);
    h.b.hold = true;
    let s1 = h.submit(s, 0, &rd10(0, 1), DataDirection::In, 512, &[]);
    let o = h.submit_attr(
        s,
        0,
        TaskAttr::Ordered,
        &rd10(1, 1),
        DataDirection::In,
        512,
        &[],
    );
    let hq = h.submit_attr(
        s,
        0,
        TaskAttr::HeadOfQueue,
        &rd10(2, 1),
        DataDirection::In,
        512,
        &[],
    );
    let s2 = h.submit(s, 0, &rd10(3, 1), DataDirection::In, 512, &[]);
    h.settle();
    assert_eq!(
        h.t.cmd_state(hq),
        Some(CmdState::Backend),
        "HEAD OF QUEUE passes the ORDERED task"
    );
    assert_eq!(h.t.cmd_state(o), Some(CmdState::Dormant));
    assert_eq!(h.t.cmd_state(s2), Some(CmdState::Dormant));
    h.b.release();
    h.settle();
    h.result(s1).good();
    h.result(hq).good();
    // Now the ORDERED task runs; S2 waits for it.
    assert_eq!(h.t.cmd_state(o), Some(CmdState::Backend));
    assert_eq!(h.t.cmd_state(s2), Some(CmdState::Dormant));
    h.b.release();
    h.settle();
    h.result(o).good();
    h.b.release();
    h.settle();
    h.result(s2).good();
}

#[test]
fn simple_tasks_run_concurrently() {
    let mut h = slow_target();
    let s = h.login_clean("iqn.t:a", 0);
    h.b.hold = true;
    let cmds: Vec<_> = (0..10)
        .map(|i| h.submit(s, 0, &rd10(i, 1), DataDirection::In, 512, &[]))
        .collect();
    h.settle();
    for c in &cmds {
        assert_eq!(h.t.cmd_state(*c), Some(CmdState::Backend));
    }
    h.b.release();
    h.settle();
    for c in cmds {
        h.result(c).good();
    }
}

#[test]
fn pool_exhaustion_never_drops_a_command() {
    let mut h = slow_target();
    let a = h.login_clean("iqn.t:a", 0);
    let b = h.login_clean("iqn.t:b", 0);
    h.b.hold = true;
    let cmds: Vec<_> = (0..64)
        .map(|i| h.submit(a, 0, &rd10(i, 1), DataDirection::In, 512, &[]))
        .collect();
    h.settle();
    fn req(s: rscst_core::SessionHandle) -> rscst_core::CommandRequest<'static> {
        rscst_core::CommandRequest {
            session: s,
            tag: TaskTag(9999),
            lun: Lun::ZERO,
            attr: TaskAttr::Simple,
            priority: 0,
            crn: 0,
            cdb: &TUR,
            expected_len: 0,
            dir: DataDirection::None,
        }
    }
    // The nexus with commands in the task set: TASK SET FULL; the other: BUSY.
    let r = h.t.submit(&req(a));
    assert_eq!(r, Err(Rejected::TaskSetFull));
    assert_eq!(r.unwrap_err().status(), ScsiStatus::TaskSetFull);
    let r = h.t.submit(&req(b));
    assert_eq!(r, Err(Rejected::Busy));
    assert_eq!(r.unwrap_err().status(), ScsiStatus::Busy);
    assert_eq!(h.t.stats().rejected, 2);
    h.b.release();
    h.settle();
    for c in cmds {
        h.result(c).good();
    }
    h.b.hold = false;
    h.cmd(b, 0, &TUR).good();
}

#[test]
fn aca_blocks_everything_but_aca_tasks_of_the_faulted_nexus() {
    let mut h = slow_target();
    let a = h.login_clean("iqn.t:a", 0);
    let b = h.login_clean("iqn.t:b", 0);
    // An ACA task without an ACA condition.
    let t = h.submit_attr(a, 0, TaskAttr::Aca, &TUR, DataDirection::None, 0, &[]);
    h.settle();
    h.result(t).check(0x5, 0x49, 0x00);
    // NACA=1 on a command that fails: ACA.
    h.read_cmd(a, 0, &[0x28, 0, 0, 0, 1, 0, 0, 0, 1, 0x04], 512)
        .check(0x5, 0x21, 0x00);
    h.cmd(a, 0, &TUR).status(ScsiStatus::AcaActive);
    h.read_cmd(a, 0, &[0x12, 0, 0, 0, 96, 0], 96)
        .status(ScsiStatus::AcaActive);
    h.cmd(b, 0, &TUR).status(ScsiStatus::AcaActive);
    let t = h.submit_attr(b, 0, TaskAttr::Aca, &TUR, DataDirection::None, 0, &[]);
    h.settle();
    h.result(t).status(ScsiStatus::AcaActive);
    // The faulted nexus may run ACA tasks (e.g. REQUEST SENSE, a retry).
    let t = h.submit_attr(
        a,
        0,
        TaskAttr::Aca,
        &rd10(0, 1),
        DataDirection::In,
        512,
        &[],
    );
    h.settle();
    h.result(t).good();
    // NACA=0 failures do not establish ACA.
    let c = h.tmf(a, 0, TmfFunction::ClearAca);
    h.settle();
    assert_eq!(h.tmf_result(c).code, TmfResponseCode::FunctionComplete);
    h.read_cmd(a, 0, &rd10(1000, 1), 512).check(0x5, 0x21, 0x00);
    h.cmd(a, 0, &TUR).good();
    h.cmd(b, 0, &TUR).good();
}

#[test]
fn aca_cleared_by_the_faulted_nexus_going_away() {
    let mut h = slow_target();
    let a = h.login_clean("iqn.t:a", 0);
    let b = h.login_clean("iqn.t:b", 0);
    h.read_cmd(a, 0, &[0x28, 0, 0, 0, 1, 0, 0, 0, 1, 0x04], 512)
        .check(0x5, 0x21, 0x00);
    h.cmd(b, 0, &TUR).status(ScsiStatus::AcaActive);
    h.t.remove_session(a).unwrap();
    h.cmd(b, 0, &TUR).good();
}

#[test]
fn qerr_01_aborts_the_task_set_on_check_condition() {
    for tas in [false, true] {
        let mut h = slow_target();
        let a = h.login_clean("iqn.t:a", 0);
        let b = h.login_clean("iqn.t:b", 0);
        set_control(&mut h, a, tas, 0b01);
        h.cmd(b, 0, &TUR).check(0x6, 0x2a, 0x01);
        h.b.hold = true;
        let ra = h.submit(a, 0, &rd10(0, 1), DataDirection::In, 512, &[]);
        let rb = h.submit(b, 0, &rd10(1, 1), DataDirection::In, 512, &[]);
        h.settle();
        let bad = h.submit(a, 0, &rd10(1000, 1), DataDirection::In, 512, &[]);
        h.settle();
        h.result(bad).check(0x5, 0x21, 0x00);
        h.b.release();
        h.settle();
        assert!(
            h.result(ra).aborted,
            "the faulting nexus's own tasks go silently"
        );
        let o = h.result(rb);
        if tas {
            o.status(ScsiStatus::TaskAborted);
        } else {
            assert!(o.aborted);
        }
        h.b.hold = false;
        if tas {
            h.cmd(b, 0, &TUR).good();
        } else {
            h.cmd(b, 0, &TUR).check(0x6, 0x2f, 0x00);
        }
    }
}

#[test]
fn qerr_11_aborts_only_the_faulting_nexus() {
    let mut h = slow_target();
    let a = h.login_clean("iqn.t:a", 0);
    let b = h.login_clean("iqn.t:b", 0);
    set_control(&mut h, a, false, 0b11);
    h.cmd(b, 0, &TUR);
    h.b.hold = true;
    let ra = h.submit(a, 0, &rd10(0, 1), DataDirection::In, 512, &[]);
    let rb = h.submit(b, 0, &rd10(1, 1), DataDirection::In, 512, &[]);
    h.settle();
    let bad = h.submit(a, 0, &rd10(1000, 1), DataDirection::In, 512, &[]);
    h.settle();
    h.result(bad).check(0x5, 0x21, 0x00);
    h.b.release();
    h.settle();
    assert!(h.result(ra).aborted);
    h.result(rb).good();
    h.b.hold = false;
    h.cmd(b, 0, &TUR).good();
}

#[test]
fn busy_transport_and_backend_are_retried() {
    let mut h = slow_target();
    let s = h.login_clean("iqn.t:a", 0);
    // Every transport call answers Busy a few times first.
    h.tr.busy = 5;
    let d = pattern(2048, 4);
    h.write_cmd(s, 0, &wr10(0, 4), &d).good();
    h.tr.busy = 3;
    h.read_cmd(s, 0, &rd10(0, 4), 2048).good().data(&d);
    assert_eq!(h.tr.busy_answers, 8);
    // The backend answers Busy.
    h.b.busy = 4;
    h.b.hold = true;
    let r = h.submit(s, 0, &rd10(0, 4), DataDirection::In, 2048, &[]);
    h.poll();
    assert_eq!(
        h.t.poll_at(h.now),
        Some(h.now),
        "parked on Busy: poll again"
    );
    for _ in 0..10 {
        h.poll();
    }
    h.b.release();
    h.settle();
    h.result(r).good().data(&d);
    // Nothing was lost: every slot is free, every buffer back.
    assert_eq!(h.t.active_commands(), 0);
    assert_eq!(h.t.buffer_pool().free_chunks(), h.t.buffer_pool().chunks());
    // A command that waits for the pool.
    assert_eq!(h.t.poll_at(h.now), None);
}

#[test]
fn commands_wait_for_buffers_instead_of_failing() {
    // An 8 KiB pool (two chunks) and buffered I/O of 4 KiB rounds.
    let m0 = mem(64 * 512, 0x4000_0000);
    let mut ram: RamB = RamBackend::new();
    let id = ram.add_lun(m0, 512).unwrap();
    let mut slow = Slow::new(ram);
    slow.hold = true;
    let mut h = H::new(slow, 8 * 1024, &[m0]);
    let lu = h.t.add_lu(&LuConfig::new(id, 512, 64)).unwrap();
    h.t.map_lun(GroupId::DEFAULT, Lun::ZERO, lu, Access::ReadWrite)
        .unwrap();
    let s = h.login("iqn.t:a");
    let t = h.submit(s, 0, &TUR, DataDirection::None, 0, &[]);
    h.settle();
    h.result(t);
    let cmds: Vec<_> = (0..4)
        .map(|i| h.submit(s, 0, &rd10(i * 8, 8), DataDirection::In, 4096, &[]))
        .collect();
    h.settle();
    let waiting = cmds
        .iter()
        .filter(|c| h.t.cmd_state(**c) == Some(CmdState::WaitBuffers))
        .count();
    assert_eq!(waiting, 2, "two hold the pool's two chunks, two wait");
    for _ in 0..8 {
        h.b.release();
        h.settle();
    }
    for c in cmds {
        h.result(c).good();
    }
}

#[test]
fn hardware_pending_timeout_is_reported_once() {
    let mut h = slow_target();
    let s = h.login_clean("iqn.t:a", 0);
    let mut cfg = h.t.config().clone();
    cfg.hw_pending_timeout = Some(core::time::Duration::from_millis(100));
    // Rebuild the target with the timeout.
    let m0 = mem(64 * 512, 0x4000_0000);
    let mut ram: RamB = RamBackend::new();
    let id = ram.add_lun(m0, 512).unwrap();
    let storage = Box::leak(Box::new(rscst_core::TargetStorage::<8, 2, 2>::new()));
    let pm = mem(64 * 1024, POOL_BUS);
    let mut t = rscst_core::Target::new(
        storage,
        rscst_core::BufferPool::new(pm, 4096).unwrap(),
        &cfg,
    );
    t.add_port(&rscst_core::PortConfig::new(
        rscst_core::RelativePortId(1),
        rscst_core::TargetPortGroupId(1),
    ))
    .unwrap();
    let lu = t.add_lu(&LuConfig::new(id, 512, 64)).unwrap();
    t.map_lun(GroupId::DEFAULT, Lun::ZERO, lu, Access::ReadWrite)
        .unwrap();
    h.t = t;
    h.b = Slow::new(ram);
    h.tr.mems = vec![pm, m0];
    let _ = s;
    let s = h.login("iqn.t:a");
    h.auto = false;
    let w = h.submit(s, 0, &wr10(0, 1), DataDirection::Out, 512, &[1; 512]);
    h.settle();
    let at = h.t.poll_at(h.now).expect("a deadline");
    assert_eq!(at.as_nanos() - h.now.as_nanos(), 100_000_000);
    h.now = at;
    h.poll();
    h.poll();
    assert_eq!(h.tr.hw_pending.len(), 1);
    assert_eq!(h.tr.hw_pending[0].handle, w);
    assert_eq!(h.t.poll_at(h.now), None);
}
