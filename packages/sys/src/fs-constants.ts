// File-system constants of <fcntl.h>, <sys/stat.h> and <linux/fs.h> that are the same on x86_64 and aarch64 (asm-generic).

/** unlinkat(2): remove a directory. */
export const AT_REMOVEDIR = 0x200;
/** linkat(2): follow a symlink at the old path. */
export const AT_SYMLINK_FOLLOW = 0x400;

/** renameat2(2) flags. */
export const RENAME_NOREPLACE = 0x1;
export const RENAME_EXCHANGE = 0x2;
export const RENAME_WHITEOUT = 0x4;

/** File types of st_mode (S_IFMT, S_IFLNK and S_IFDIR are in constants.ts). */
export const S_IFREG = 0o100000;
export const S_IFIFO = 0o010000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFSOCK = 0o140000;
/** include/uapi/linux/stat.h: the set-user-ID bit of st_mode. */
export const S_ISUID = 0o4000;
/** include/uapi/linux/stat.h: the set-group-ID bit of st_mode. */
export const S_ISGID = 0o2000;
/** include/uapi/linux/stat.h: the sticky bit (a directory's names removable by their owners only). */
export const S_ISVTX = 0o1000;

/** utimensat(2): a tv_nsec that leaves the time as it is. */
export const UTIME_OMIT = (1 << 30) - 2;

/** mount(2) flags (include/uapi/linux/mount.h). */
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
/** umount2(2) flags: detach now, free when no longer busy; refuse a symlink as the target. */
export const MNT_DETACH = 0x2;
export const UMOUNT_NOFOLLOW = 0x8;
