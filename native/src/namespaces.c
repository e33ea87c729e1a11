#include <net/if.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define LOG_PREFIX "namespaces: "
#include "log.h"
#include "namespaces.h"

int set_hostname(const char *name)
{
	if (sethostname(name, strlen(name)) < 0) {
		pr_perror("set hostname %s", name);
		return -1;
	}
	return 0;
}

int loopback_up(void)
{
	struct ifreq ifr;
	int fd, ret = -1;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		pr_perror("create socket to configure lo");
		return -1;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) {
		pr_perror("get flags of lo");
		goto out;
	}
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0) {
		pr_perror("bring lo up");
		goto out;
	}
	ret = 0;
out:
	close(fd);
	return ret;
}
