/*
 * The practical limit for the file-transfer benchmark: a plain C server on
 * blocking sockets, one connection at a time.
 *
 *   filebench sink DIR     receive each connection's bytes into a new file in DIR, fsync, close
 *                          (epoll, non-blocking: any number of uploads at once)
 *   filebench source FILE  send FILE to each connection, then close (blocking, one at a time)
 *
 * Listens on 127.0.0.1, an ephemeral port, printed as "listening on PORT".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BLOCK (1 << 20)

static char buffer[BLOCK];

static int write_all(int fd, const char *data, ssize_t length) {
    while (length > 0) {
        ssize_t n = write(fd, data, (size_t)length);
        if (n < 0) return -1;
        data += n;
        length -= n;
    }
    return 0;
}

static int files[65536]; /* per connection: the file it is written to */

static void sink(int listener, const char *dir) {
    int epoll = epoll_create1(0), count = 0;
    fcntl(listener, F_SETFL, O_NONBLOCK);
    struct epoll_event event = {.events = EPOLLIN, .data.fd = listener};
    epoll_ctl(epoll, EPOLL_CTL_ADD, listener, &event);
    static struct epoll_event events[256];
    for (;;) {
        int ready = epoll_wait(epoll, events, 256, -1);
        for (int i = 0; i < ready; i++) {
            int fd = events[i].data.fd;
            if (fd == listener) {
                int client;
                while ((client = accept(listener, NULL, NULL)) >= 0) {
                    fcntl(client, F_SETFL, O_NONBLOCK);
                    /* A new file each time, as a real upload makes (rewriting one
                       file is far cheaper on some filesystems and would flatter it). */
                    char path[4096];
                    snprintf(path, sizeof path, "%s/upload-%d-%d", dir, (int)getpid(), count++);
                    files[client] = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
                    struct epoll_event e = {.events = EPOLLIN, .data.fd = client};
                    epoll_ctl(epoll, EPOLL_CTL_ADD, client, &e);
                }
                continue;
            }
            ssize_t n;
            while ((n = read(fd, buffer, BLOCK)) > 0) write_all(files[fd], buffer, n);
            if (n == 0 || errno != EAGAIN) { /* complete (or the client is gone) */
                fsync(files[fd]);
                close(files[fd]);
                if (n == 0) write_all(fd, "OK\n", 3);
                epoll_ctl(epoll, EPOLL_CTL_DEL, fd, NULL);
                close(fd);
            }
        }
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: filebench sink DIR | source FILE\n");
        return 2;
    }
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = 0};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    if (bind(listener, (struct sockaddr *)&address, sizeof address) || listen(listener, 16) ||
        getsockname(listener, (struct sockaddr *)&address, &size)) {
        perror("listen");
        return 1;
    }
    printf("listening on %d\n", ntohs(address.sin_port));
    fflush(stdout);
    if (strcmp(argv[1], "sink") == 0) sink(listener, argv[2]);
    for (;;) {
        int client = accept(listener, NULL, NULL);
        if (client < 0) continue;
        int in = open(argv[2], O_RDONLY);
        ssize_t n;
        while ((n = read(in, buffer, BLOCK)) > 0)
            if (write_all(client, buffer, n)) break;
        close(in);
        close(client);
    }
}
