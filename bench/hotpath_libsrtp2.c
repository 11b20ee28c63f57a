// Reference hot path for `deno task bench`: H.264 access units -> RTP (STAP-A / single NAL /
// FU-A, 1200-byte datagrams) -> SRTP with libsrtp2, the C library most native WebRTC stacks use.
// Usage: hotpath_libsrtp2 <frames-dir> <cm|gcm> <seconds>
// Prints one JSON line: {"profile","frames","inputBytes","datagrams","outputBytes","seconds"}.
#include <dirent.h>
#include <srtp2/srtp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_DATAGRAM 1200
#define RTP_HEADER 12
#define MAX_TAG 16

typedef struct {
  uint8_t *data;
  size_t len;
} frame_t;

static int version_order(const struct dirent **a, const struct dirent **b) {
  return strverscmp((*a)->d_name, (*b)->d_name);
}

static int is_frame(const struct dirent *e) {
  size_t n = strlen(e->d_name);
  return n > 5 && strcmp(e->d_name + n - 5, ".h264") == 0;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

// Next NAL unit of an Annex-B buffer after *pos; returns its length and sets *start.
static size_t next_nal(const uint8_t *b, size_t len, size_t *pos, size_t *start) {
  size_t i = *pos;
  while (i + 3 <= len && !(b[i] == 0 && b[i + 1] == 0 && b[i + 2] == 1)) i++;
  if (i + 3 > len) return 0;
  size_t s = i + 3, j = s;
  while (j + 3 <= len && !(b[j] == 0 && b[j + 1] == 0 && (b[j + 2] == 1 || (b[j + 2] == 0 && j + 3 < len && b[j + 3] == 1)))) j++;
  if (j + 3 > len) j = len;
  *start = s;
  *pos = j;
  return j - s;
}

static uint16_t seq = 1;
static uint8_t packet[MAX_DATAGRAM + MAX_TAG + 64];
static uint64_t datagrams = 0, out_bytes = 0;

static void emit(srtp_t session, uint32_t ts, int marker, const uint8_t *p1, size_t l1,
                 const uint8_t *p2, size_t l2) {
  packet[0] = 0x80;
  packet[1] = (marker ? 0x80 : 0) | 102;
  packet[2] = seq >> 8;
  packet[3] = seq & 0xff;
  seq++;
  packet[4] = ts >> 24; packet[5] = ts >> 16; packet[6] = ts >> 8; packet[7] = ts;
  packet[8] = 0x12; packet[9] = 0x34; packet[10] = 0x56; packet[11] = 0x78;
  memcpy(packet + RTP_HEADER, p1, l1);
  if (l2) memcpy(packet + RTP_HEADER + l1, p2, l2);
  int len = (int)(RTP_HEADER + l1 + l2);
  if (srtp_protect(session, packet, &len) != srtp_err_status_ok) {
    fprintf(stderr, "srtp_protect failed\n");
    exit(1);
  }
  datagrams++;
  out_bytes += (uint64_t)len;
}

static void send_frame(srtp_t session, const frame_t *f, uint32_t ts) {
  const size_t max_payload = MAX_DATAGRAM - RTP_HEADER - MAX_TAG;
  size_t pos = 0, start = 0, n;
  // Collect NAL units first so the marker goes on the last packet of the access unit.
  size_t starts[256], lens[256], count = 0;
  while ((n = next_nal(f->data, f->len, &pos, &start)) > 0 && count < 256) {
    starts[count] = start;
    lens[count++] = n;
  }
  size_t i = 0;
  while (i < count) {
    const uint8_t *nal = f->data + starts[i];
    uint8_t type = nal[0] & 0x1f;
    if (type == 9) { i++; continue; } // access unit delimiter: not sent
    if ((type == 7 || type == 8) && i + 1 < count) {
      // STAP-A of consecutive SPS/PPS.
      uint8_t stap[MAX_DATAGRAM];
      size_t sl = 1;
      uint8_t nri = 0;
      while (i < count && ((f->data[starts[i]] & 0x1f) == 7 || (f->data[starts[i]] & 0x1f) == 8) &&
             sl + 2 + lens[i] <= max_payload) {
        stap[sl++] = lens[i] >> 8;
        stap[sl++] = lens[i] & 0xff;
        memcpy(stap + sl, f->data + starts[i], lens[i]);
        if ((f->data[starts[i]] & 0x60) > nri) nri = f->data[starts[i]] & 0x60;
        sl += lens[i];
        i++;
      }
      stap[0] = nri | 24;
      emit(session, ts, i == count, stap, sl, NULL, 0);
      continue;
    }
    int last = i + 1 == count;
    if (lens[i] <= max_payload) {
      emit(session, ts, last, nal, lens[i], NULL, 0);
    } else {
      uint8_t fu[2] = {(uint8_t)((nal[0] & 0xe0) | 28), 0};
      size_t off = 1;
      while (off < lens[i]) {
        size_t chunk = lens[i] - off < max_payload - 2 ? lens[i] - off : max_payload - 2;
        fu[1] = (uint8_t)((off == 1 ? 0x80 : 0) | (off + chunk == lens[i] ? 0x40 : 0) | type);
        emit(session, ts, last && off + chunk == lens[i], fu, 2, nal + off, chunk);
        off += chunk;
      }
    }
    i++;
  }
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s <frames-dir> <cm|gcm> <seconds>\n", argv[0]);
    return 2;
  }
  struct dirent **names;
  int n = scandir(argv[1], &names, is_frame, version_order);
  if (n <= 0) {
    fprintf(stderr, "no frames in %s\n", argv[1]);
    return 2;
  }
  frame_t *frames = calloc((size_t)n, sizeof(frame_t));
  for (int i = 0; i < n; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", argv[1], names[i]->d_name);
    FILE *fp = fopen(path, "rb");
    if (!fp) { perror(path); return 2; }
    fseek(fp, 0, SEEK_END);
    frames[i].len = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    frames[i].data = malloc(frames[i].len);
    if (fread(frames[i].data, 1, frames[i].len, fp) != frames[i].len) { perror(path); return 2; }
    fclose(fp);
    free(names[i]);
  }
  free(names);

  int gcm = strcmp(argv[2], "gcm") == 0;
  srtp_init();
  srtp_policy_t policy;
  memset(&policy, 0, sizeof policy);
  if (gcm) {
    srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtp);
    srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtcp);
  } else {
    srtp_crypto_policy_set_rtp_default(&policy.rtp);
    srtp_crypto_policy_set_rtcp_default(&policy.rtcp);
  }
  uint8_t key[64];
  for (int i = 0; i < 64; i++) key[i] = (uint8_t)(i * 7 + 3);
  policy.key = key;
  policy.ssrc.type = ssrc_any_outbound;
  policy.window_size = 1024;
  srtp_t session;
  if (srtp_create(&session, &policy) != srtp_err_status_ok) {
    fprintf(stderr, "srtp_create failed\n");
    return 1;
  }
  double seconds = atof(argv[3]);
  uint64_t in_bytes = 0, sent = 0;
  uint32_t ts = 0;
  double t0 = now_s(), t;
  do {
    for (int k = 0; k < 25; k++) {
      const frame_t *f = &frames[sent % (uint64_t)n];
      send_frame(session, f, ts);
      ts += 3600;
      in_bytes += f->len;
      sent++;
    }
    t = now_s() - t0;
  } while (t < seconds);
  printf("{\"profile\":\"%s\",\"frames\":%llu,\"inputBytes\":%llu,\"datagrams\":%llu,"
         "\"outputBytes\":%llu,\"seconds\":%.6f}\n",
         gcm ? "gcm" : "cm", (unsigned long long)sent, (unsigned long long)in_bytes,
         (unsigned long long)datagrams, (unsigned long long)out_bytes, t);
  srtp_dealloc(session);
  return 0;
}
