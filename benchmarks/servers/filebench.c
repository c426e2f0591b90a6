/*
 * The practical limit for the file-transfer benchmark: a plain C server on
 * blocking sockets, one connection at a time.
 *
 *   filebench sink DIR     receive each connection's bytes into a new file in DIR, fsync, close
 *   filebench source FILE  send FILE to each connection, then close
 *
 * Listens on 127.0.0.1, an ephemeral port, printed as "listening on PORT".
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    for (unsigned count = 0;; count++) {
        int client = accept(listener, NULL, NULL);
        if (client < 0) continue;
        if (strcmp(argv[1], "sink") == 0) {
            /* A new file each time, as a real upload makes (rewriting one file
               is far cheaper on some filesystems and would flatter the sink). */
            char path[4096];
            snprintf(path, sizeof path, "%s/upload-%d-%u", argv[2], (int)getpid(), count);
            int out = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
            ssize_t n;
            while ((n = read(client, buffer, BLOCK)) > 0) write_all(out, buffer, n);
            fsync(out);
            close(out);
            write_all(client, "OK\n", 3);
        } else {
            int in = open(argv[2], O_RDONLY);
            ssize_t n;
            while ((n = read(in, buffer, BLOCK)) > 0)
                if (write_all(client, buffer, n)) break;
            close(in);
        }
        close(client);
    }
}
