#!/bin/busybox sh
# /init of the test bed's dom0 (Debian's Linux and Xen tools, busybox):
# start the Xen daemons, boot each guest named in /guests/list (one at a time,
# /guests/NAME.cfg), print its console, power off.
# Lines for the harness start with OASIS-XEN: or OASIS-DOMU:, then [NAME] for
# lines about one guest.
/bin/busybox --install -s
export PATH=/usr/lib/xen-4.17/bin:/usr/sbin:/sbin:/usr/bin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /run/xen /run/xenstored /var/run/xen /var/log/xen/console /var/lib/xen /var/lib/xenstored
mount -t devpts devpts /dev/pts
mount -t tmpfs run /run
mkdir -p /run/xen /run/xenstored
for m in xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs; do modprobe $m || echo "OASIS-XEN: modprobe $m failed"; done
mount -t xenfs xenfs /proc/xen
xenstored --pid-file=/run/xenstored.pid
xen-init-dom0
xenconsoled --pid-file=/run/xenconsoled.pid --log=guest --log-dir=/var/log/xen/console
echo "OASIS-XEN: dom0 ready"
for g in $(cat /guests/list); do
    # -F: stay in the foreground until the domain is gone, then say why it went.
    timeout 120 xl create -F /guests/$g.cfg > /tmp/xl-$g.log 2>&1
    echo "OASIS-XEN: [$g] xl exited with $?"
    # A guest that outlived its time limit must not slow down the next one.
    xl destroy $g 2>/dev/null
    sed "s/^/OASIS-XEN: [$g] xl: /" /tmp/xl-$g.log
    # xenconsoled may still be writing the last lines of the log.
    sleep 1
    sed "s/^/OASIS-DOMU: [$g] /" /var/log/xen/console/guest-$g.log
done
echo "OASIS-XEN: done"
poweroff -f
