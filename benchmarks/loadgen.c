/*
 * Echo load generator: epoll, pipelined, checks every echoed byte.
 *
 *   loadgen tcp PORT CONNS INFLIGHT SIZE WARMUP SECONDS [PIDS]
 *       CONNS connections to 127.0.0.1:PORT, each keeping INFLIGHT messages
 *       of SIZE bytes outstanding.  Every byte of the stream is a function
 *       of its position, so every echoed byte is verified.
 *   loadgen udp PORT SOCKETS INFLIGHT SIZE WARMUP SECONDS [PIDS]
 *       SOCKETS UDP sockets, each keeping INFLIGHT datagrams outstanding;
 *       a datagram without a reply in 200 ms counts as lost and is replaced.
 *
 * Runs WARMUP seconds unmeasured, then SECONDS measured, then stops.
 * Prints one JSON object.  Exit status 1 if any echoed byte was wrong.
 *
 * An optional last argument, PIDS (comma-separated), names the server's
 * processes: the CPU time they use during the measured seconds is reported
 * as "server_cpu_s"; "loadgen_cpu_s" is this program's own.  A load
 * generator that used less than all of its CPU was not the bottleneck.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAMPLES (4 << 20)

static const char *server_pids; /* comma-separated, or NULL */

/* CPU seconds (user + system) used so far by this process. */
static double own_cpu(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec / 1e6 + (double)u.ru_stime.tv_sec +
           (double)u.ru_stime.tv_usec / 1e6;
}

/* CPU seconds (user + system) used so far by the server's processes. */
static double server_cpu(void) {
    if (!server_pids) return 0;
    static long ticks;
    if (!ticks) ticks = sysconf(_SC_CLK_TCK);
    double total = 0;
    const char *p = server_pids;
    while (*p) {
        long pid = strtol(p, (char **)&p, 10);
        if (*p == ',') p++;
        char path[64], line[4096];
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t n = fread(line, 1, sizeof line - 1, f);
        fclose(f);
        line[n] = 0;
        char *rest = strrchr(line, ')'); /* the command name may hold spaces */
        unsigned long utime = 0, stime = 0;
        if (rest && sscanf(rest + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) == 2)
            total += (double)(utime + stime) / (double)ticks;
    }
    return total;
}
#define LOSS_TIMEOUT 0.2

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static inline uint8_t pattern(uint64_t position, unsigned stream) {
    return (uint8_t)(position ^ (position >> 8) ^ (position >> 16) ^ stream);
}

static double *samples;
static size_t sample_count;

static void sample(double seconds) {
    if (sample_count < MAX_SAMPLES) samples[sample_count++] = seconds;
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(double p) {
    if (!sample_count) return 0;
    size_t index = (size_t)(p * (double)(sample_count - 1));
    return samples[index] * 1e6;
}

static struct sockaddr_in server_address(int port) {
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return address;
}

struct tcp_conn {
    int fd;
    uint64_t sent, received, done;
    int want_write;
    double *started; /* send time of each outstanding message, by index % inflight */
};

static int run_tcp(int port, int conns, int inflight, int size, double warmup, double seconds) {
    struct sockaddr_in address = server_address(port);
    struct tcp_conn *c = calloc((size_t)conns, sizeof *c);
    int epoll = epoll_create1(0);
    for (int i = 0; i < conns; i++) {
        c[i].fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(c[i].fd, (struct sockaddr *)&address, sizeof address)) {
            perror("connect");
            return 2;
        }
        int one = 1;
        setsockopt(c[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(c[i].fd, F_SETFL, O_NONBLOCK);
        c[i].started = calloc((size_t)inflight, sizeof(double));
        struct epoll_event e = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)i};
        epoll_ctl(epoll, EPOLL_CTL_ADD, c[i].fd, &e);
        c[i].want_write = 1;
    }
    size_t scratch_size = (size_t)inflight * (size_t)size;
    if (scratch_size > (1 << 20)) scratch_size = 1 << 20;
    uint8_t *scratch = malloc(scratch_size), *in = malloc(1 << 20);
    double start = now(), measure_from = start + warmup, end = measure_from + seconds;
    uint64_t messages = 0, bytes = 0, errors = 0;
    struct epoll_event *events = calloc(1024, sizeof *events);
    double t = start, cpu_from = -1, own_from = 0;
    while (t < end) {
        int ready = epoll_wait(epoll, events, 1024, 10);
        t = now();
        int measuring = t >= measure_from;
        if (measuring && cpu_from < 0) {
            cpu_from = server_cpu();
            own_from = own_cpu();
        }
        for (int k = 0; k < ready; k++) {
            struct tcp_conn *x = &c[events[k].data.u32];
            unsigned stream = events[k].data.u32;
            if (events[k].events & EPOLLIN) {
                ssize_t n;
                /* One read takes all that is there; reading again to see
                 * EAGAIN would cost a system call per event. */
                while ((n = read(x->fd, in, 1 << 20)) > 0) {
                    for (ssize_t j = 0; j < n; j++)
                        if (in[j] != pattern(x->received + (uint64_t)j, stream)) errors++;
                    uint64_t before = x->received / (uint64_t)size;
                    x->received += (uint64_t)n;
                    uint64_t after = x->received / (uint64_t)size;
                    for (uint64_t m = before; m < after; m++) {
                        if (measuring) {
                            sample(t - x->started[m % (uint64_t)inflight]);
                            messages++;
                        }
                    }
                    if (measuring) bytes += (uint64_t)n;
                    x->done = after;
                    if (n < (1 << 20)) break;
                }
                if (n == 0) {
                    fprintf(stderr, "server closed a connection\n");
                    return 2;
                }
            }
            /* Keep INFLIGHT messages outstanding. */
            uint64_t limit = (x->done + (uint64_t)inflight) * (uint64_t)size;
            while (x->sent < limit) {
                size_t chunk = (size_t)(limit - x->sent);
                if (chunk > scratch_size) chunk = scratch_size;
                for (size_t j = 0; j < chunk; j++) scratch[j] = pattern(x->sent + j, stream);
                ssize_t n = write(x->fd, scratch, chunk);
                if (n < 0) break;
                for (uint64_t p = (x->sent + (uint64_t)size - 1) / (uint64_t)size * (uint64_t)size;
                     p < x->sent + (uint64_t)n; p += (uint64_t)size)
                    x->started[(p / (uint64_t)size) % (uint64_t)inflight] = t;
                x->sent += (uint64_t)n;
            }
        }
    }
    double cpu = server_cpu() - cpu_from, own = own_cpu() - own_from;
    qsort(samples, sample_count, sizeof(double), compare);
    printf("{\"messages_per_s\": %.1f, \"mb_per_s\": %.1f, \"p50_us\": %.1f, \"p99_us\": %.1f, "
           "\"server_cpu_s\": %.3f, \"loadgen_cpu_s\": %.3f, \"errors\": %llu}\n",
           (double)messages / seconds, (double)bytes / seconds / 1e6, percentile(0.5), percentile(0.99), cpu, own,
           (unsigned long long)errors);
    return errors ? 1 : 0;
}

struct slot {
    uint64_t seq;
    double sent;
    int busy;
};

static void fill_datagram(uint8_t *buffer, int size, uint64_t seq) {
    memcpy(buffer, &seq, sizeof seq);
    for (int j = 8; j < size; j++) buffer[j] = pattern(seq + (uint64_t)j, 0);
}

static int run_udp(int port, int sockets, int inflight, int size, double warmup, double seconds) {
    if (size < 8) size = 8;
    struct sockaddr_in address = server_address(port);
    int *fds = calloc((size_t)sockets, sizeof(int));
    struct slot *slots = calloc((size_t)sockets * (size_t)inflight, sizeof *slots);
    uint64_t *next = calloc((size_t)sockets, sizeof(uint64_t));
    int epoll = epoll_create1(0);
    uint8_t *out = malloc((size_t)size), *in = malloc(65536);
    double start = now(), measure_from = start + warmup, end = measure_from + seconds, t = start;
    uint64_t replies = 0, lost = 0, errors = 0;
    for (int i = 0; i < sockets; i++) {
        fds[i] = socket(AF_INET, SOCK_DGRAM, 0);
        connect(fds[i], (struct sockaddr *)&address, sizeof address);
        fcntl(fds[i], F_SETFL, O_NONBLOCK);
        struct epoll_event e = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(epoll, EPOLL_CTL_ADD, fds[i], &e);
        for (int s = 0; s < inflight; s++) {
            struct slot *slot = &slots[i * inflight + s];
            slot->seq = next[i]++;
            slot->sent = t;
            slot->busy = 1;
            fill_datagram(out, size, slot->seq);
            send(fds[i], out, (size_t)size, 0);
        }
    }
    struct epoll_event *events = calloc(1024, sizeof *events);
    double last_sweep = t, cpu_from = -1, own_from = 0;
    while (t < end) {
        int ready = epoll_wait(epoll, events, 1024, 10);
        t = now();
        int measuring = t >= measure_from;
        if (measuring && cpu_from < 0) {
            cpu_from = server_cpu();
            own_from = own_cpu();
        }
        for (int k = 0; k < ready; k++) {
            int i = (int)events[k].data.u32;
            ssize_t n;
            while ((n = recv(fds[i], in, 65536, 0)) > 0) {
                uint64_t seq;
                memcpy(&seq, in, sizeof seq);
                struct slot *slot = &slots[i * inflight + (int)(seq % (uint64_t)inflight)];
                if (!slot->busy || slot->seq != seq) continue; /* late reply to a datagram given up on */
                if (n != size) errors++;
                for (ssize_t j = 8; j < n; j++)
                    if (in[j] != pattern(seq + (uint64_t)j, 0)) { errors++; break; }
                if (measuring) {
                    replies++;
                    sample(t - slot->sent);
                }
                slot->seq += (uint64_t)inflight; /* the next datagram for this slot */
                slot->sent = t;
                fill_datagram(out, size, slot->seq);
                send(fds[i], out, (size_t)size, 0);
            }
        }
        if (t - last_sweep > 0.05) { /* replace datagrams that never came back */
            last_sweep = t;
            for (int s = 0; s < sockets * inflight; s++) {
                if (slots[s].busy && t - slots[s].sent > LOSS_TIMEOUT) {
                    if (measuring) lost++;
                    slots[s].seq += (uint64_t)inflight;
                    slots[s].sent = t;
                    fill_datagram(out, size, slots[s].seq);
                    send(fds[s / inflight], out, (size_t)size, 0);
                }
            }
        }
    }
    double cpu = server_cpu() - cpu_from, own = own_cpu() - own_from;
    qsort(samples, sample_count, sizeof(double), compare);
    printf("{\"replies_per_s\": %.1f, \"lost\": %llu, \"loss_ratio\": %.6f, \"p50_us\": %.1f, \"p99_us\": %.1f, "
           "\"server_cpu_s\": %.3f, \"loadgen_cpu_s\": %.3f, \"errors\": %llu}\n",
           (double)replies / seconds, (unsigned long long)lost,
           replies + lost ? (double)lost / (double)(replies + lost) : 0.0, percentile(0.5), percentile(0.99), cpu, own,
           (unsigned long long)errors);
    return errors ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc != 8 && argc != 9) {
        fprintf(stderr, "usage: loadgen tcp|udp PORT CONNS INFLIGHT SIZE WARMUP SECONDS [PIDS]\n");
        return 2;
    }
    if (argc == 9) server_pids = argv[8];
    samples = malloc(MAX_SAMPLES * sizeof(double));
    int port = atoi(argv[2]), conns = atoi(argv[3]), inflight = atoi(argv[4]), size = atoi(argv[5]);
    double warmup = atof(argv[6]), seconds = atof(argv[7]);
    if (strcmp(argv[1], "tcp") == 0) return run_tcp(port, conns, inflight, size, warmup, seconds);
    if (strcmp(argv[1], "udp") == 0) return run_udp(port, conns, inflight, size, warmup, seconds);
    fprintf(stderr, "unknown mode %s\n", argv[1]);
    return 2;
}
