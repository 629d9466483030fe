#!/usr/bin/python3
"""Interop test: drives vfio-migd's API from Python with Debian's python3-grpcio.

The client is not ours: message classes are generated from the .proto files with
`protoc --python_out` at test time, and calls go through grpcio's generic unary API, so this
checks the wire contract, not our C client. Starts the real daemon binary ($VFIO_MIGD) on a
temporary socket.
"""
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import grpc

SRCDIR = os.environ.get("SRCDIR", os.path.join(os.path.dirname(__file__), "..", ".."))
DAEMON = os.environ.get("VFIO_MIGD", os.path.join(SRCDIR, "build", "vfio-migd"))
PROTO_DIR = os.path.join(SRCDIR, "rpc", "proto")
GEN_DIR = tempfile.mkdtemp(prefix="vfio-migd-pb-")
subprocess.run(
    ["protoc", "-I", PROTO_DIR, "--python_out", GEN_DIR,
     "vfio_migd/v1/devices.proto", "vfio_migd/v1/system.proto", "vfio_migd/v1/groups.proto",
     "vfio_migd/v1/migrations.proto", "grpc/health/v1/health.proto"],
    check=True)
sys.path.insert(0, GEN_DIR)
from vfio_migd.v1 import devices_pb2 as dev  # noqa: E402
from vfio_migd.v1 import system_pb2 as sysm  # noqa: E402
from vfio_migd.v1 import groups_pb2 as grp  # noqa: E402
from vfio_migd.v1 import migrations_pb2 as mig  # noqa: E402
# grpc/health/v1 would shadow the installed grpc package: load it by file path instead.
import importlib.util  # noqa: E402
_spec = importlib.util.spec_from_file_location(
    "health_pb2", os.path.join(GEN_DIR, "grpc", "health", "v1", "health_pb2.py"))
health = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(health)

S = dev.DeviceState


class Daemon:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="vfio-migd-interop-")
        self.sock = os.path.join(self.dir, "api.sock")
        self.proc = subprocess.Popen([DAEMON, "--socket", self.sock, "--log-level", "warning",
                                      "--allowed-dirs", self.dir])
        self.channel = grpc.insecure_channel("unix:" + self.sock)
        grpc.channel_ready_future(self.channel).result(timeout=60)

    # The timeouts only end a call that hangs: generous for a sanitizer build on a busy machine.
    def call(self, service, method, request, response_cls, timeout=60):
        fn = self.channel.unary_unary(
            "/%s/%s" % (service, method),
            request_serializer=lambda m: m.SerializeToString() if hasattr(m, "SerializeToString") else m,
            response_deserializer=response_cls.FromString)
        return fn(request, timeout=timeout)

    def dev(self, method, request, response_cls):
        return self.call("vfio_migd.v1.DeviceService", method, request, response_cls)

    def mig(self, method, request, response_cls=None):
        return self.call("vfio_migd.v1.MigrationService", method, request,
                         response_cls or mig.MigrationResponse)

    def stop(self):
        self.channel.close()
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


class InteropTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon()

    @classmethod
    def tearDownClass(cls):
        rc = cls.d.stop()
        assert rc == 0, "daemon exited with %d" % rc

    def attach(self, name, options="size=1M"):
        r = self.d.dev("AttachDevice", dev.AttachDeviceRequest(id=name, sim=dev.SimSource(options=options)),
                       dev.AttachDeviceResponse)
        self.assertEqual(r.device.id, name)
        return r.device

    def get(self, name):
        return self.d.dev("GetDevice", dev.GetDeviceRequest(id=name), dev.GetDeviceResponse).device

    def assertCode(self, code, fn, *args):
        with self.assertRaises(grpc.RpcError) as cm:
            fn(*args)
        self.assertEqual(cm.exception.code(), code, cm.exception.details())
        self.assertTrue(cm.exception.details(), "error without a message")
        return cm.exception.details()

    def test_health_and_version(self):
        r = self.d.call("grpc.health.v1.Health", "Check", health.HealthCheckRequest(),
                        health.HealthCheckResponse)
        self.assertEqual(r.status, health.HealthCheckResponse.SERVING)
        self.assertCode(grpc.StatusCode.NOT_FOUND, self.d.call, "grpc.health.v1.Health", "Check",
                        health.HealthCheckRequest(service="nope"), health.HealthCheckResponse)
        v = self.d.call("vfio_migd.v1.SystemService", "GetVersion", sysm.GetVersionRequest(),
                        sysm.GetVersionResponse)
        self.assertEqual(v.api, "vfio_migd.v1")
        self.assertEqual(v.pid, self.d.proc.pid)
        self.assertIn("sim", v.backends)

    def test_attach_list_state_path(self):
        d = self.attach("py-a", "flags=stop_copy+p2p+pre_copy,size=64K")
        self.assertEqual(d.state, S.DEVICE_STATE_RUNNING)
        self.assertEqual(d.migration_flags, 7)
        self.assertEqual(d.backend, "sim")
        ids = [x.id for x in self.d.dev("ListDevices", dev.ListDevicesRequest(), dev.ListDevicesResponse).devices]
        self.assertIn("py-a", ids)
        self.assertEqual(ids, sorted(ids))
        r = self.d.dev("SetDeviceState", dev.SetDeviceStateRequest(id="py-a", target=S.DEVICE_STATE_STOP),
                       dev.SetDeviceStateResponse)
        self.assertEqual(r.state, S.DEVICE_STATE_STOP)
        self.assertEqual([(a.__getattribute__("from"), a.to) for a in r.arcs],
                         [(S.DEVICE_STATE_RUNNING, S.DEVICE_STATE_RUNNING_P2P),
                          (S.DEVICE_STATE_RUNNING_P2P, S.DEVICE_STATE_STOP)])
        self.assertEqual(self.get("py-a").state, S.DEVICE_STATE_STOP)
        p = self.d.dev("ComputePath", dev.ComputePathRequest(**{"from": S.DEVICE_STATE_RUNNING},
                                                             to=S.DEVICE_STATE_STOP_COPY, migration_flags=7),
                       dev.ComputePathResponse)
        self.assertEqual([a.to for a in p.arcs],
                         [S.DEVICE_STATE_RUNNING_P2P, S.DEVICE_STATE_STOP, S.DEVICE_STATE_STOP_COPY])
        self.assertEqual([a.opens_data_session for a in p.arcs], [False, False, True])
        self.d.dev("DetachDevice", dev.DetachDeviceRequest(id="py-a"), dev.DetachDeviceResponse)
        self.assertCode(grpc.StatusCode.NOT_FOUND, self.get, "py-a")

    def test_bad_input_changes_nothing(self):
        self.attach("py-b")
        before = self.get("py-b")
        self.assertCode(grpc.StatusCode.NOT_FOUND, self.get, "no-such")
        msg = self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.d.dev, "SetDeviceState",
                              dev.SetDeviceStateRequest(id="py-b"), dev.SetDeviceStateResponse)
        self.assertIn("not a VFIO migration state", msg)
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.d.dev, "SetDeviceState",
                        dev.SetDeviceStateRequest(id="py-b", target=S.DEVICE_STATE_ERROR), dev.SetDeviceStateResponse)
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.d.dev, "SetDeviceState",
                        dev.SetDeviceStateRequest(id="py-b", target=42), dev.SetDeviceStateResponse)
        self.assertCode(grpc.StatusCode.ALREADY_EXISTS, self.attach, "py-b")
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.attach, "py-c", "size=banana")
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.attach, "bad id!", "size=1M")
        self.assertCode(grpc.StatusCode.NOT_FOUND, self.d.dev, "AttachDevice",
                        dev.AttachDeviceRequest(id="k", kernel=dev.KernelSource(pci_address="ffff:ff:1f.7")),
                        dev.AttachDeviceResponse)
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.d.dev, "AttachDevice",
                        dev.AttachDeviceRequest(id="k", kernel=dev.KernelSource(pci_address="not-a-bdf")),
                        dev.AttachDeviceResponse)
        self.assertCode(grpc.StatusCode.UNIMPLEMENTED, self.d.dev, "NoSuchMethod",
                        dev.GetDeviceRequest(id="py-b"), dev.GetDeviceResponse)
        self.assertCode(grpc.StatusCode.RESOURCE_EXHAUSTED, self.attach, "py-d", "size=1M," + "x" * 100000)
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.d.dev, "GetDevice",
                        b"\xff\xff\xff\xff", dev.GetDeviceResponse)
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.d.mig, "Save",
                        mig.SaveRequest(name="py-b", path="relative/file"))
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.d.mig, "Save",
                        mig.SaveRequest(name="py-b", path="/tmp/x", subject=7))
        after = self.get("py-b")
        self.assertEqual(before.state, after.state)
        self.assertEqual(before.stats, after.stats)
        self.assertEqual(dict(before.properties), dict(after.properties))
        ids = [x.id for x in self.d.dev("ListDevices", dev.ListDevicesRequest(), dev.ListDevicesResponse).devices]
        self.assertNotIn("py-c", ids)
        self.assertNotIn("py-d", ids)

    def test_numbers_out_of_range_are_refused_with_the_range(self):
        """Issue 10 item 4: no number of a request is truncated or clamped; each is refused
        with its range, before any job exists."""
        self.attach("py-n0")
        self.d.call("vfio_migd.v1.GroupService", "CreateGroup",
                    grp.CreateGroupRequest(name="py-n", device_ids=["py-n0"]),
                    grp.CreateGroupResponse)
        token = "0" * 64
        cases = [
            ("PrepareIncoming", mig.PrepareIncomingRequest(group="py-n", listen="127.0.0.1:99999"),
             "from 0 to 65535"),
            ("PrepareIncoming", mig.PrepareIncomingRequest(group="py-n", listen="127.0.0.1:65536"),
             "from 0 to 65535"),
            ("PrepareIncoming", mig.PrepareIncomingRequest(group="py-n", listen="127.0.0.1:+80"),
             "from 0 to 65535"),
            ("PrepareIncoming", mig.PrepareIncomingRequest(group="py-n", listen="127.0.0.1:0",
                                                           timeout_ms=86400001),
             "1 to 86400000"),
            ("StartMigration", mig.StartMigrationRequest(group="py-n", address="127.0.0.1:70000",
                                                         token=token),
             "from 1 to 65535"),
            ("StartMigration", mig.StartMigrationRequest(group="py-n", address="127.0.0.1:0",
                                                         token=token),
             "from 1 to 65535"),
        ]
        for field in ("max_precopy_ms", "downtime_target_ms", "timeout_ms"):
            cases.append(("StartMigration", mig.StartMigrationRequest(
                group="py-n", address="127.0.0.1:1", token=token,
                options=mig.MigrationOptions(**{field: 4294967295})), "1 to 86400000"))
        for field in ("bandwidth_limit", "stopcopy_bandwidth_limit"):
            cases.append(("StartMigration", mig.StartMigrationRequest(
                group="py-n", address="127.0.0.1:1", token=token,
                options=mig.MigrationOptions(**{field: (1 << 40) + 1})), "1 to 1099511627776"))
        for method, req, needle in cases:
            msg = self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.d.mig, method, req)
            self.assertIn(needle, msg, "%s %s" % (method, req))
        jobs = self.d.mig("ListMigrations", mig.ListMigrationsRequest(), mig.ListMigrationsResponse)
        self.assertEqual([j.group for j in jobs.migrations if j.group == "py-n"], [])

    def test_region_access_bounds_are_the_daemons(self):
        """Issue 10: the CLI refuses a region access of 0 or more than 4096 bytes before it
        calls, so only a direct call reaches the daemon's own check; it must refuse with its
        range, before it looks at the device (a sim device has no regions at all)."""
        self.attach("py-r")
        before = self.get("py-r")
        rng = "a region access moves 1 to 4096 bytes, not %d"
        cases = [
            ("ReadRegion", dev.ReadRegionRequest(id="py-r", region_index=0, offset=0, length=0),
             dev.ReadRegionResponse, 0),
            ("ReadRegion", dev.ReadRegionRequest(id="py-r", region_index=7, offset=4096, length=0),
             dev.ReadRegionResponse, 0),
            ("ReadRegion", dev.ReadRegionRequest(id="py-r", region_index=0, offset=0, length=4097),
             dev.ReadRegionResponse, 4097),
            ("ReadRegion", dev.ReadRegionRequest(id="py-r", region_index=0, offset=0,
                                                 length=4294967295),
             dev.ReadRegionResponse, 4294967295),
            ("WriteRegion", dev.WriteRegionRequest(id="py-r", region_index=0, offset=0, data=b""),
             dev.WriteRegionResponse, 0),
            ("WriteRegion", dev.WriteRegionRequest(id="py-r", region_index=0, offset=0,
                                                   data=b"\0" * 4097),
             dev.WriteRegionResponse, 4097),
        ]
        for method, req, resp, size in cases:
            msg = self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.d.dev, method, req, resp)
            self.assertEqual(msg, rng % size, "%s %s" % (method, req))
        # A length in range gets past that check to the device's own answer.
        msg = self.assertCode(grpc.StatusCode.FAILED_PRECONDITION, self.d.dev, "ReadRegion",
                              dev.ReadRegionRequest(id="py-r", region_index=0, offset=0, length=1),
                              dev.ReadRegionResponse)
        self.assertEqual(msg, "device 'py-r' (back-end 'sim') has no regions to access")
        self.assertCode(grpc.StatusCode.NOT_FOUND, self.d.dev, "ReadRegion",
                        dev.ReadRegionRequest(id="py-none", region_index=0, offset=0, length=1),
                        dev.ReadRegionResponse)
        after = self.get("py-r")
        self.assertEqual(before.state, after.state)
        self.assertEqual(before.stats, after.stats)
        self.assertEqual(dict(before.properties), dict(after.properties))

    def test_save_restore_round_trip(self):
        self.attach("py-src", "size=3M")
        self.attach("py-dst", "size=3M")
        path = os.path.join(self.d.dir, "py-src.state")
        device = mig.MIGRATION_SUBJECT_DEVICE
        r = self.d.mig("Save", mig.SaveRequest(name="py-src", path=path)).migration
        self.assertEqual(r.subject, device, "the daemon says what the name was")
        self.assertEqual(r.role, mig.MIGRATION_ROLE_SAVE)
        self.assertEqual(r.state, "completed")
        self.assertEqual([d.state for d in r.devices], [S.DEVICE_STATE_STOP])
        self.assertEqual(r.bytes, 3 << 20)
        self.assertEqual(r.devices[0].arcs[-1].to, S.DEVICE_STATE_STOP)
        digest = dict(self.get("py-src").properties)["digest"]
        self.assertNotEqual(dict(self.get("py-dst").properties)["digest"], digest)
        self.assertCode(grpc.StatusCode.ALREADY_EXISTS, self.d.mig, "Save",
                        mig.SaveRequest(name="py-src", path=path, subject=device))
        self.assertCode(grpc.StatusCode.NOT_FOUND, self.d.mig, "Save",
                        mig.SaveRequest(name="py-src", path=path, subject=mig.MIGRATION_SUBJECT_GROUP))
        r = self.d.mig("Restore", mig.RestoreRequest(name="py-dst", path=path, subject=device)).migration
        self.assertEqual(r.subject, device)
        self.assertEqual([d.state for d in r.devices], [S.DEVICE_STATE_RUNNING])
        self.assertEqual(r.bytes, 3 << 20)
        self.assertEqual(dict(self.get("py-dst").properties)["digest"], digest)

    def test_watch_events_streams_a_save_to_its_end(self):
        # The save's stop arcs are held until the watch has taken its first event, so the watch
        # follows the job from its start to its end however slow the machine is.
        release = os.path.join(self.d.dir, "wg.release")
        for name in ("w0", "w1"):
            self.attach(name, "size=1M,hold_arc=running_p2p->stop,hold_until=" + release)
        self.d.call("vfio_migd.v1.GroupService", "CreateGroup",
                    grp.CreateGroupRequest(name="wg", device_ids=["w0", "w1"]), grp.CreateGroupResponse)
        save = self.d.channel.unary_unary(
            "/vfio_migd.v1.MigrationService/Save",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=mig.MigrationResponse.FromString)
        fut = save.future(mig.SaveRequest(name="wg", path=os.path.join(self.d.dir, "wg.stream")),
                          timeout=120)
        jobs = []
        deadline = time.monotonic() + 60  # a state is awaited; the bound only ends a hang
        while not jobs and time.monotonic() < deadline:
            jobs = [m for m in self.d.call("vfio_migd.v1.MigrationService", "ListMigrations",
                                           mig.ListMigrationsRequest(), mig.ListMigrationsResponse).migrations
                    if m.group == "wg"]
            time.sleep(0.01)
        self.assertTrue(jobs, "the save job never appeared")
        watch = self.d.channel.unary_stream(
            "/vfio_migd.v1.MigrationService/WatchEvents",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=mig.MigrationEvent.FromString)
        stream = watch(mig.MigrationIdRequest(id=jobs[0].id), timeout=120)
        events = [next(stream)]
        self.assertEqual(events[0].migration.state, "active", "the save was held")
        open(release, "w").close()
        events += list(stream)
        self.assertEqual(events[0].kind, "phase")
        self.assertEqual(events[-1].kind, "end")
        self.assertEqual(events[-1].migration.state, "completed")
        self.assertEqual(events[-1].migration.bytes, 2 << 20)
        phases = [e.migration.phase for e in events if e.kind == "phase"]
        self.assertEqual(phases, sorted(phases), "phases only move forward")
        self.assertEqual(fut.result().migration.state, "completed")
        with self.assertRaises(grpc.RpcError) as cm:
            list(watch(mig.MigrationIdRequest(id="m999"), timeout=60))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)


if __name__ == "__main__":
    unittest.main(verbosity=2)
