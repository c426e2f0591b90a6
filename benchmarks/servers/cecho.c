/*
 * The practical limit for the echo benchmarks: an epoll echo server in C.
 *
 *   cecho tcp    TCP echo, every connection on one epoll loop
 *   cecho udp    UDP echo
 *
 * Listens on 127.0.0.1, an ephemeral port, printed as "listening on PORT".
 * Runs until killed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF (64 * 1024)
#define MAXFD 65536

struct conn {
    char *pending; /* bytes read but not yet written back */
    size_t length, offset;
};

static struct conn conns[MAXFD];

static int listen_on(int type) {
    int fd = socket(AF_INET, type, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = 0};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    if (bind(fd, (struct sockaddr *)&address, sizeof address) ||
        (type == SOCK_STREAM && listen(fd, 4096)) ||
        getsockname(fd, (struct sockaddr *)&address, &size)) {
        perror("listen");
        exit(1);
    }
    printf("listening on %d\n", ntohs(address.sin_port));
    fflush(stdout);
    return fd;
}

static void udp_echo(void) {
    int fd = listen_on(SOCK_DGRAM);
    static char buffer[65536];
    for (;;) {
        struct sockaddr_storage peer;
        socklen_t size = sizeof peer;
        ssize_t n = recvfrom(fd, buffer, sizeof buffer, 0, (struct sockaddr *)&peer, &size);
        if (n >= 0) sendto(fd, buffer, (size_t)n, 0, (struct sockaddr *)&peer, size);
    }
}

static void close_conn(int epoll, int fd) {
    epoll_ctl(epoll, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    free(conns[fd].pending);
    conns[fd].pending = NULL;
    conns[fd].length = conns[fd].offset = 0;
}

/* Write what is pending; returns 1 if everything went, 0 if the socket is full. */
static int flush(int fd) {
    struct conn *c = &conns[fd];
    while (c->offset < c->length) {
        ssize_t n = write(fd, c->pending + c->offset, c->length - c->offset);
        if (n < 0) return errno == EAGAIN ? 0 : -1;
        c->offset += (size_t)n;
    }
    c->length = c->offset = 0;
    return 1;
}

static void tcp_echo(void) {
    int listener = listen_on(SOCK_STREAM);
    fcntl(listener, F_SETFL, O_NONBLOCK);
    int epoll = epoll_create1(0);
    struct epoll_event event = {.events = EPOLLIN, .data.fd = listener};
    epoll_ctl(epoll, EPOLL_CTL_ADD, listener, &event);
    static struct epoll_event events[1024];
    for (;;) {
        int ready = epoll_wait(epoll, events, 1024, -1);
        for (int i = 0; i < ready; i++) {
            int fd = events[i].data.fd;
            if (fd == listener) {
                int client;
                while ((client = accept4(listener, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    int one = 1;
                    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    conns[client].pending = malloc(BUF);
                    struct epoll_event e = {.events = EPOLLIN, .data.fd = client};
                    epoll_ctl(epoll, EPOLL_CTL_ADD, client, &e);
                }
                continue;
            }
            struct conn *c = &conns[fd];
            if (events[i].events & EPOLLOUT) {
                int done = flush(fd);
                if (done < 0) { close_conn(epoll, fd); continue; }
                if (done) { /* drained: read again */
                    struct epoll_event e = {.events = EPOLLIN, .data.fd = fd};
                    epoll_ctl(epoll, EPOLL_CTL_MOD, fd, &e);
                }
                continue;
            }
            ssize_t n = read(fd, c->pending, BUF);
            if (n <= 0) {
                if (n < 0 && errno == EAGAIN) continue;
                close_conn(epoll, fd);
                continue;
            }
            c->length = (size_t)n;
            c->offset = 0;
            int done = flush(fd);
            if (done < 0) close_conn(epoll, fd);
            else if (!done) { /* backpressure: stop reading until the peer reads */
                struct epoll_event e = {.events = EPOLLOUT, .data.fd = fd};
                epoll_ctl(epoll, EPOLL_CTL_MOD, fd, &e);
            }
        }
    }
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "udp") == 0) udp_echo();
    if (argc == 2 && strcmp(argv[1], "tcp") == 0) tcp_echo();
    fprintf(stderr, "usage: cecho tcp|udp\n");
    return 2;
}
