/* Round-trips frames through the C ABI with loss, as an Apple or Android client would. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "punktfunk_core.h"

#define FRAMES 50

static unsigned char fill(uint32_t frame, size_t i) { return (unsigned char)(frame * 131u + i * 7u); }
static size_t frame_len(uint32_t frame) { return 1000 + (size_t)frame * 3001; }

struct tally { int delivered, recovered, lost, corrupt; };

static void on_event(void *user, const PfFrameEvent *e) {
    struct tally *t = user;
    if (e->kind == PF_EVENT_LOST) { t->lost++; return; }
    t->delivered++;
    if (e->recovered_shards > 0) t->recovered++;
    if (e->len != frame_len(e->frame_id)) { t->corrupt++; return; }
    for (size_t i = 0; i < e->len; i++)
        if (e->data[i] != fill(e->frame_id, i)) { t->corrupt++; return; }
}

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "FAILED: %s (line %d)\n", #c, __LINE__); return 1; } } while (0)

int main(void) {
    CHECK(punktfunk_abi_version() == PF_ABI_VERSION);

    PfStreamConfig cfg;
    CHECK(punktfunk_stream_config_default(&cfg) == PF_OK);
    CHECK(cfg.struct_size == sizeof(PfStreamConfig));
    cfg.encrypted = 1;
    memset(cfg.key, 0x42, sizeof cfg.key);

    /* A config that claims to be smaller than the fields we need is refused. */
    PfStreamConfig small = cfg;
    small.struct_size = 8;
    CHECK(punktfunk_sender_new(&small) == NULL);
    CHECK(punktfunk_sender_new(NULL) == NULL);

    PfSender *tx = punktfunk_sender_new(&cfg);
    PfReceiver *rx = punktfunk_receiver_new(&cfg);
    CHECK(tx && rx);

    struct tally t = {0};
    size_t sent = 0, dropped = 0;
    for (uint32_t f = 0; f < FRAMES; f++) {
        size_t len = frame_len(f);
        unsigned char *buf = malloc(len);
        for (size_t i = 0; i < len; i++) buf[i] = fill(f, i);
        PfDatagrams d;
        CHECK(punktfunk_sender_packetize(tx, f, f == 0, 1000u * f, buf, len, &d) == PF_OK);
        free(buf);
        for (size_t i = 0; i < d.count; i++, sent++) {
            if (sent % 10 == 3) { dropped++; continue; } /* 10 % loss, inside 20 % FEC */
            CHECK(punktfunk_receiver_push(rx, d.data + i * d.datagram_len, d.datagram_len, on_event, &t) == PF_OK);
        }
    }
    /* A forged datagram is rejected, not delivered. */
    unsigned char junk[1456] = {1, 1};
    CHECK(punktfunk_receiver_push(rx, junk, sizeof junk, on_event, &t) == PF_ERR_REJECTED);

    PfStats st;
    CHECK(punktfunk_receiver_stats(rx, &st) == PF_OK);
    printf("sent %zu datagrams, dropped %zu; delivered %d (recovered %d), lost %d, corrupt %d; stats: recovered %llu invalid %llu\n",
           sent, dropped, t.delivered, t.recovered, t.lost, t.corrupt,
           (unsigned long long)st.packets_recovered, (unsigned long long)st.packets_invalid);
    CHECK(t.delivered == FRAMES && t.lost == 0 && t.corrupt == 0);
    /* Only lost data shards need rebuilding; lost parity does not. */
    CHECK(t.recovered > 0 && st.packets_recovered > 0 && st.packets_recovered <= dropped);
    CHECK(st.packets_invalid == 1);

    punktfunk_sender_free(tx);
    punktfunk_receiver_free(rx);
    punktfunk_sender_free(NULL);

    /* After a loss, frames wait for its repair; the loss is reported by number. */
    PfRecovery *rec = punktfunk_recovery_new(1);
    PfAsk ask;
    CHECK(rec && punktfunk_recovery_arrived(rec, 0, 1, 0) == 1);
    CHECK(punktfunk_recovery_lost(rec, 1, 10, &ask) == 1 && ask.kind == PF_ASK_REPAIR && ask.first == 1 && ask.last == 1);
    CHECK(punktfunk_recovery_arrived(rec, 2, 0, 0) == 0);
    CHECK(punktfunk_recovery_poll(rec, 20, &ask) == 0);
    CHECK(punktfunk_recovery_poll(rec, 10 + 500000, &ask) == 1 && ask.kind == PF_ASK_KEYFRAME);
    CHECK(punktfunk_recovery_arrived(rec, 3, 0, 1) == 1);
    CHECK(punktfunk_recovery_refused(rec, 30, &ask) == 1 && ask.kind == PF_ASK_KEYFRAME);
    CHECK(punktfunk_recovery_arrived(rec, 4, 0, 1) == 0 && punktfunk_recovery_arrived(rec, 5, 1, 0) == 1);
    CHECK(punktfunk_recovery_lost(NULL, 1, 0, &ask) == PF_ERR_NULL);
    punktfunk_recovery_free(rec);
    punktfunk_recovery_free(NULL);
    puts("c harness: ok");
    return 0;
}
