// The WASM media core's hot path checked by an independent implementation: werift decrypts the
// SRTP (its own AES-CM/GCM code) and depacketizes the H.264 (its own RFC 6184 code); the NAL
// units must come back exactly as the sample files hold them.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  H264RtpPayload,
  ProtectionProfileAeadAes128Gcm,
  ProtectionProfileAes128CmHmacSha1_80,
  RtpPacket,
  SrtpSession,
} from "werift";
import { FileVideoSource } from "../src/media/file_source.ts";
import { nalType, splitNalUnits } from "../src/media/h264.ts";
import { MediaCoreError, mediaCoreModule, type SrtpProfile } from "../src/peer/media_core.ts";
import { SrtpVideoSender } from "../src/peer/srtp_video_sender.ts";

const SAMPLES = new URL("../samples/h264/", import.meta.url).pathname;

function keys(profile: SrtpProfile) {
  const key = crypto.getRandomValues(new Uint8Array(16));
  const salt = crypto.getRandomValues(
    new Uint8Array(profile === "SRTP_AEAD_AES_128_GCM" ? 12 : 14),
  );
  return { key, salt };
}

for (const profile of ["SRTP_AES128_CM_HMAC_SHA1_80", "SRTP_AEAD_AES_128_GCM"] as const) {
  Deno.test(`media core: 250 sample frames → ${profile} datagrams that werift decrypts and depacketizes`, async () => {
    const source = await FileVideoSource.open({ dir: SAMPLES });
    const { key, salt } = keys(profile);
    const sender = await SrtpVideoSender.create({
      profile,
      key,
      salt,
      ssrc: 0xcafe,
      payloadType: 102,
      firstSequence: 65500,
    });
    const rx = new SrtpSession({
      keys: {
        localMasterKey: Buffer.from(key),
        localMasterSalt: Buffer.from(salt),
        remoteMasterKey: Buffer.from(key),
        remoteMasterSalt: Buffer.from(salt),
      },
      profile: profile === "SRTP_AEAD_AES_128_GCM"
        ? ProtectionProfileAeadAes128Gcm
        : ProtectionProfileAes128CmHmacSha1_80,
    });
    let expectedSeq = 65500;
    for (const [i, frame] of source.frames.entries()) {
      const ts = (i * 3600) >>> 0;
      const datagrams = sender.writeFrame(frame.data, ts).map((d) => d.slice());
      assert.ok(datagrams.length > 0);
      let annexB = Buffer.alloc(0);
      let fragment: Buffer | undefined;
      for (const [j, d] of datagrams.entries()) {
        assert.ok(d.length <= 1200, `datagram of ${d.length} bytes`);
        const packet = RtpPacket.deSerialize(rx.decrypt(Buffer.from(d)));
        assert.equal(packet.header.sequenceNumber, expectedSeq++ & 0xffff);
        assert.equal(packet.header.timestamp, ts);
        assert.equal(packet.header.payloadType, 102);
        assert.equal(packet.header.ssrc, 0xcafe);
        assert.equal(packet.header.marker, j === datagrams.length - 1, "marker on the last");
        const h264 = H264RtpPayload.deSerialize(packet.payload, fragment);
        fragment = h264.fragment;
        if (h264.payload) annexB = Buffer.concat([annexB, h264.payload]);
      }
      const sent = splitNalUnits(frame.data).filter((n) => nalType(n) !== 9);
      const got = splitNalUnits(new Uint8Array(annexB));
      assert.equal(got.length, sent.length, `frame ${i}: NAL unit count`);
      for (const [k, nal] of sent.entries()) {
        assert.deepEqual(got[k], nal, `frame ${i} NAL ${k}`);
      }
    }
    sender.close();
  });
}

Deno.test("media core: bad input gets a clear error and the sender keeps working", async () => {
  const { key, salt } = keys("SRTP_AES128_CM_HMAC_SHA1_80");
  const sender = await SrtpVideoSender.create({
    profile: "SRTP_AES128_CM_HMAC_SHA1_80",
    key,
    salt,
    ssrc: 1,
    payloadType: 96,
  });
  const idr = await Deno.readFile(`${SAMPLES}frame-0001.h264`);
  for (
    const [bad, why] of [
      [new Uint8Array(0), /no NAL units/],
      [new Uint8Array([1, 2, 3, 4, 5]), /no NAL units/],
      [new Uint8Array([0, 0, 1, 0xe5, 1, 2]), /forbidden_zero_bit/],
      [crypto.getRandomValues(new Uint8Array(5000)).map((b) => b | 0x80), /no NAL units|forbidden/],
    ] as const
  ) {
    assert.throws(() => sender.writeFrame(bad, 0), (e: unknown) => {
      assert.ok(e instanceof MediaCoreError);
      assert.equal(e.code, "MEDIA_CORE_FRAME");
      assert.match(e.message, why);
      return true;
    });
  }
  // Every truncation of a real IDR either packetizes or fails cleanly.
  for (let n = 0; n < idr.length; n += 997) {
    try {
      sender.writeFrame(idr.subarray(0, n), 0);
    } catch (e) {
      assert.ok(e instanceof MediaCoreError && e.code === "MEDIA_CORE_FRAME", String(e));
    }
  }
  assert.ok(sender.writeFrame(idr, 3600).length > 10);
  sender.close();
});

Deno.test("media core: wrong key sizes are refused by name", async () => {
  await assert.rejects(
    SrtpVideoSender.create({
      profile: "SRTP_AEAD_AES_128_GCM",
      key: new Uint8Array(16),
      salt: new Uint8Array(14),
      ssrc: 1,
      payloadType: 96,
    }),
    (e: unknown) =>
      e instanceof MediaCoreError && e.code === "MEDIA_CORE_KEY" && /salt|12/i.test(e.message),
  );
});

Deno.test("media core: a trap ends one sender, another keeps streaming", async () => {
  const { key, salt } = keys("SRTP_AES128_CM_HMAC_SHA1_80");
  const options = {
    profile: "SRTP_AES128_CM_HMAC_SHA1_80" as const,
    key,
    salt,
    ssrc: 7,
    payloadType: 96,
  };
  const a = await SrtpVideoSender.create(options);
  const b = await SrtpVideoSender.create(options);
  const idr = await Deno.readFile(`${SAMPLES}frame-0001.h264`);
  assert.throws(() => a.debugTrap(), (e: unknown) => {
    assert.ok(e instanceof MediaCoreError);
    assert.equal(e.code, "MEDIA_CORE_TRAP");
    assert.match(e.message, /trap requested/, "the panic message is reported");
    return true;
  });
  assert.ok(a.dead);
  assert.throws(() => a.writeFrame(idr, 0), /trapped/);
  assert.ok(b.writeFrame(idr, 0).length > 10, "the other sender is untouched");
  b.close();
});

Deno.test("media core: compiled once, instantiated per sender", async () => {
  const m1 = await mediaCoreModule();
  const m2 = await mediaCoreModule();
  assert.equal(m1, m2);
  const imports = WebAssembly.Module.imports(m1).map((i) => `${i.module}.${i.name}`);
  const allowed = [
    "clock_time_get",
    "environ_get",
    "environ_sizes_get",
    "fd_write",
    "proc_exit",
    "random_get",
  ].map((n) => `wasi_snapshot_preview1.${n}`);
  for (const i of imports) assert.ok(allowed.includes(i), `unexpected import ${i}`);
});

Deno.test("media core: a NACK gets the named datagrams again, byte for byte", async () => {
  const { key, salt } = keys("SRTP_AES128_CM_HMAC_SHA1_80");
  const sender = await SrtpVideoSender.create({
    profile: "SRTP_AES128_CM_HMAC_SHA1_80",
    key,
    salt,
    ssrc: 42,
    payloadType: 96,
    firstSequence: 65534,
  });
  const idr = await Deno.readFile(`${SAMPLES}frame-0001.h264`);
  const first = sender.writeFrame(idr, 0).map((d) => d.slice());
  assert.ok(first.length > 5);
  // Lost: the 2nd and the 4th (sequence numbers wrap through 0), plus one never sent.
  const again = sender.retransmit([65535, 1, 30000]).map((d) => d.slice());
  assert.deepEqual(again, [first[1], first[3]]);
  // A receiver that lost them accepts the copies.
  const rx = new SrtpSession({
    keys: {
      localMasterKey: Buffer.from(key),
      localMasterSalt: Buffer.from(salt),
      remoteMasterKey: Buffer.from(key),
      remoteMasterSalt: Buffer.from(salt),
    },
    profile: ProtectionProfileAes128CmHmacSha1_80,
  });
  for (const [i, d] of first.entries()) if (i !== 1 && i !== 3) rx.decrypt(Buffer.from(d));
  for (const d of again) {
    assert.ok(
      [65535, 1].includes(RtpPacket.deSerialize(rx.decrypt(Buffer.from(d))).header.sequenceNumber),
    );
  }
  assert.deepEqual(sender.retransmit([]), []);
  sender.close();
});
