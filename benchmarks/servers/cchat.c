/*
 * The practical limit for the chat benchmark: an epoll chat relay in C.
 * Every complete line a client sends goes to every client (the lines of one
 * read in one write).  Listens on 127.0.0.1, an ephemeral port, printed as
 * "listening on PORT".  Runs until killed.
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

#define MAXFD 65536
#define BUF (64 * 1024)

struct client {
    int open;
    char in[BUF];
    size_t in_length;
    char *out; /* what the socket did not take yet */
    size_t out_length, out_capacity;
};

static struct client *clients[MAXFD];
static int fds[MAXFD], count, epoll;

static void drop(int fd) {
    epoll_ctl(epoll, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    free(clients[fd]->out);
    free(clients[fd]);
    clients[fd] = NULL;
    for (int i = 0; i < count; i++)
        if (fds[i] == fd) { fds[i] = fds[--count]; break; }
}

static void send_to(int fd, const char *data, size_t length) {
    struct client *c = clients[fd];
    if (!c->out_length) {
        ssize_t n = write(fd, data, length);
        if (n > 0) { data += n; length -= (size_t)n; }
        if (!length) return;
        struct epoll_event e = {.events = EPOLLIN | EPOLLOUT, .data.fd = fd};
        epoll_ctl(epoll, EPOLL_CTL_MOD, fd, &e);
    }
    if (c->out_length + length > c->out_capacity) {
        c->out_capacity = (c->out_length + length) * 2;
        c->out = realloc(c->out, c->out_capacity);
    }
    memcpy(c->out + c->out_length, data, length);
    c->out_length += length;
}

int main(void) {
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = 0};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    if (bind(listener, (struct sockaddr *)&address, sizeof address) || listen(listener, 4096) ||
        getsockname(listener, (struct sockaddr *)&address, &size)) {
        perror("listen");
        return 1;
    }
    printf("listening on %d\n", ntohs(address.sin_port));
    fflush(stdout);
    epoll = epoll_create1(0);
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
                    clients[client] = calloc(1, sizeof(struct client));
                    fds[count++] = client;
                    struct epoll_event e = {.events = EPOLLIN, .data.fd = client};
                    epoll_ctl(epoll, EPOLL_CTL_ADD, client, &e);
                }
                continue;
            }
            struct client *c = clients[fd];
            if (!c) continue;
            if (events[i].events & EPOLLOUT && c->out_length) {
                ssize_t n = write(fd, c->out, c->out_length);
                if (n > 0) {
                    memmove(c->out, c->out + n, c->out_length - (size_t)n);
                    c->out_length -= (size_t)n;
                }
                if (!c->out_length) {
                    struct epoll_event e = {.events = EPOLLIN, .data.fd = fd};
                    epoll_ctl(epoll, EPOLL_CTL_MOD, fd, &e);
                }
            }
            if (!(events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
            ssize_t n = read(fd, c->in + c->in_length, BUF - c->in_length);
            if (n <= 0) {
                if (n < 0 && errno == EAGAIN) continue;
                drop(fd);
                continue;
            }
            c->in_length += (size_t)n;
            char *end = memrchr(c->in, '\n', c->in_length);
            if (!end) {
                if (c->in_length == BUF) c->in_length = 0; /* an endless line: drop it */
                continue;
            }
            size_t lines = (size_t)(end - c->in) + 1;
            for (int k = 0; k < count; k++) send_to(fds[k], c->in, lines);
            memmove(c->in, c->in + lines, c->in_length - lines);
            c->in_length -= lines;
        }
    }
}
