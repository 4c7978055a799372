/* The control connection's client side through the C ABI, as an Apple or Android client
 * drives it around its own QUIC stream: here the stream is stdin (host -> client) and
 * stdout (client -> host), and the test on the other end plays the host. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "punktfunk_core.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "FAILED: %s (line %d)\n", #c, __LINE__); exit(1); } } while (0)

static uint64_t now_us = 1000000;

/* Writes what the library queued to the "stream". */
static void flush(PfControl *c) {
    PfBytes out;
    CHECK(punktfunk_control_output(c, &out) == PF_OK);
    size_t done = 0;
    while (done < out.len) {
        ssize_t n = write(1, out.data + done, out.len - done);
        CHECK(n > 0);
        done += (size_t)n;
    }
    CHECK(punktfunk_control_consume(c, done) == PF_OK);
}

/* Reads from the stream until an event arrives; answers the library queued (a pairing
 * confirmation) are flushed on the way. */
static PfControlEvent next_event(PfControl *c) {
    PfControlEvent e;
    for (;;) {
        int r = punktfunk_control_poll_event(c, &e);
        CHECK(r >= 0);
        if (r == 1) return e;
        unsigned char buf[512];
        ssize_t n = read(0, buf, sizeof buf);
        CHECK(n > 0);
        now_us += 100;
        CHECK(punktfunk_control_push(c, buf, (size_t)n, now_us) == PF_OK);
        flush(c);
    }
}

int main(void) {
    uint8_t client_fp[32], host_fp[32];
    memset(client_fp, 0x11, sizeof client_fp);
    memset(host_fp, 0x22, sizeof host_fp);

    PfControl *c = punktfunk_control_new("c-client");
    CHECK(c != NULL);
    CHECK(punktfunk_control_new(NULL) == NULL);
    PfStartRequest req = { sizeof(PfStartRequest), "Desktop", 1920, 1080, 120, PF_CODEC_HEVC, 50000, 20, 1400, 0, PF_START_TEN_BIT | PF_START_REPAIRS };
    CHECK(punktfunk_control_start(c, &req) == PF_ERR_STATE); /* not before the welcome */
    flush(c);

    PfControlEvent e = next_event(c);
    CHECK(e.kind == PF_CONTROL_WELCOME && e.paired == 0 && strcmp(e.text, "test-host") == 0);

    CHECK(punktfunk_control_pair(c, "4321", client_fp, host_fp) == PF_OK);
    flush(c);
    e = next_event(c);
    CHECK(e.kind == PF_CONTROL_PAIRED);

    CHECK(punktfunk_control_ping(c, now_us) == PF_OK);
    PfStartRequest bad = req;
    bad.codec = 7;
    CHECK(punktfunk_control_start(c, &bad) == PF_ERR_STATE);
    bad = req;
    bad.struct_size = 8;
    CHECK(punktfunk_control_start(c, &bad) == PF_ERR_NULL);
    CHECK(punktfunk_control_start(c, &req) == PF_OK);
    flush(c);
    e = next_event(c);
    CHECK(e.kind == PF_CONTROL_CLOCK);
    fprintf(stderr, "clock offset %lld us over %llu us\n", (long long)e.clock_offset_us, (unsigned long long)e.rtt_us);
    CHECK(e.clock_offset_us > 4000000 && e.clock_offset_us < 6000000);
    e = next_event(c);
    CHECK(e.kind == PF_CONTROL_STARTED && e.started.data_port == 48101 && e.started.token == 77 && e.started.width == 1920 && e.started.key[0] == 9 && e.started.mic_key[15] == 10 && e.started.ten_bit && !e.started.yuv444 && e.started.repairs);
    CHECK(punktfunk_control_frames_lost(c, 5, 6) == PF_OK);

    /* The data-plane hello, sealed with the start's microphone key. */
    PfSealer *hellos = punktfunk_hello_sealer_new(e.started.mic_key);
    CHECK(hellos != NULL);
    PfBytes hello;
    CHECK(punktfunk_seal(hellos, NULL, 0, now_us, &hello) == PF_OK && hello.len == 22 + 16);
    CHECK(punktfunk_datagram_kind(hello.data, hello.len) == PF_DATAGRAM_HELLO);
    punktfunk_sealer_free(hellos);

    PfInputEvent key = { .kind = PF_INPUT_KEY, .code = 30, .pressed = 1 };
    PfInputEvent text = { .kind = PF_INPUT_TEXT, .text = "h\xc3\xa9" };
    PfInputEvent scroll = { .kind = PF_INPUT_SCROLL, .v120 = -120, .vertical = 1 };
    PfInputEvent touch = { .kind = PF_INPUT_TOUCH_DOWN, .touch_id = 3, .x = 10.5, .y = 20 };
    PfInputEvent junk = { .kind = 99 };
    CHECK(punktfunk_control_input(c, &key) == PF_OK && punktfunk_control_input(c, &text) == PF_OK);
    CHECK(punktfunk_control_input(c, &scroll) == PF_OK && punktfunk_control_input(c, &touch) == PF_OK);
    CHECK(punktfunk_control_input(c, &junk) == PF_ERR_STATE);
    CHECK(punktfunk_control_pad(c, "{\"state\":{\"number\":0,\"active_mask\":1,\"buttons\":4096,\"left_trigger\":0,"
                                   "\"right_trigger\":255,\"left_stick\":[0,32767],\"right_stick\":[0,0]}}") == PF_OK);
    CHECK(punktfunk_control_pad(c, "{\"state\":{}}") == PF_ERR_REJECTED);
    flush(c);
    e = next_event(c);
    CHECK(e.kind == PF_CONTROL_PAD && strcmp(e.text, "{\"rumble\":{\"number\":0,\"low\":65535,\"high\":0}}") == 0);
    PfReceiveStats st = { 100, 1, 2, 3000, 50, 4321 };
    CHECK(punktfunk_control_report(c, &st) == PF_OK);
    CHECK(punktfunk_control_reconfigure(c, 8000, 0, 0, 0) == PF_OK);
    flush(c);
    e = next_event(c);
    CHECK(e.kind == PF_CONTROL_RECONFIGURED && e.bitrate_kbps == 8000 && e.width == 0);
    CHECK(punktfunk_control_stop(c) == PF_OK);
    flush(c);
    e = next_event(c);
    CHECK(e.kind == PF_CONTROL_ENDED && strcmp(e.text, "stopped by the client") == 0);

    /* Audio datagrams: a sealed microphone packet is recognised as one; a sound opener
     * takes no microphone packet and no junk. */
    uint8_t k[16];
    memset(k, 5, sizeof k);
    PfSealer *mic = punktfunk_mic_sealer_new(k);
    PfSoundOpener *sound = punktfunk_sound_opener_new(k);
    CHECK(mic && sound);
    const uint8_t opus[3] = {0xf8, 0xff, 0xfe};
    PfBytes d;
    CHECK(punktfunk_seal(mic, opus, sizeof opus, 1234, &d) == PF_OK && d.len == 22 + 3 + 16);
    CHECK(punktfunk_datagram_kind(d.data, d.len) == PF_DATAGRAM_MIC);
    PfAudioPacket p;
    CHECK(punktfunk_sound_open(sound, d.data, d.len, &p) == PF_ERR_REJECTED);
    CHECK(punktfunk_sound_open(sound, opus, sizeof opus, &p) == PF_ERR_REJECTED);
    CHECK(punktfunk_datagram_kind(opus, sizeof opus) == PF_DATAGRAM_UNKNOWN);
    punktfunk_sealer_free(mic);
    punktfunk_sound_opener_free(sound);

    punktfunk_control_free(c);
    punktfunk_control_free(NULL);
    fprintf(stderr, "c control: ok\n");
    return 0;
}
