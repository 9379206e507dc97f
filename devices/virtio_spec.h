/* Constants and wire layouts from the virtio 1.2 specification (split rings, MMIO, blk, rng, vsock). */
#ifndef MINIVM_VIRTIO_SPEC_H
#define MINIVM_VIRTIO_SPEC_H

#include <stddef.h>
#include <stdint.h>

/* All multi-byte fields below are little-endian in guest memory (spec 1.4:
 * "le16/le32/le64"); minivm runs on little-endian hosts only, checked here. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "minivm's virtio code assumes a little-endian host"
#endif

/* 2.1 Device status field. */
#define VIRTIO_STATUS_ACKNOWLEDGE 0x01
#define VIRTIO_STATUS_DRIVER 0x02
#define VIRTIO_STATUS_DRIVER_OK 0x04
#define VIRTIO_STATUS_FEATURES_OK 0x08
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80

/* 6 Reserved feature bits. */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_F_ACCESS_PLATFORM 33
#define VIRTIO_F_RING_PACKED 34

#define VIRTIO_BIT(b) (1ULL << (b))

/* 5 Device IDs. */
#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_RNG 4
#define VIRTIO_ID_VSOCK 19

/* 4.2.2 MMIO device register layout (version 2). All registers are 32 bits
 * wide; the device-specific configuration space starts at 0x100. */
#define VIRTIO_MMIO_MAGIC_VALUE 0x000 /* "virt" */
#define VIRTIO_MMIO_VERSION 0x004
#define VIRTIO_MMIO_DEVICE_ID 0x008
#define VIRTIO_MMIO_VENDOR_ID 0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES 0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES 0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL 0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX 0x034
#define VIRTIO_MMIO_QUEUE_NUM 0x038
#define VIRTIO_MMIO_QUEUE_READY 0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY 0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS 0x060
#define VIRTIO_MMIO_INTERRUPT_ACK 0x064
#define VIRTIO_MMIO_STATUS 0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW 0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH 0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW 0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH 0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW 0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH 0x0a4
#define VIRTIO_MMIO_SHM_SEL 0x0ac
#define VIRTIO_MMIO_SHM_LEN_LOW 0x0b0
#define VIRTIO_MMIO_SHM_LEN_HIGH 0x0b4
#define VIRTIO_MMIO_SHM_BASE_LOW 0x0b8
#define VIRTIO_MMIO_SHM_BASE_HIGH 0x0bc
#define VIRTIO_MMIO_QUEUE_RESET 0x0c0
#define VIRTIO_MMIO_CONFIG_GENERATION 0x0fc
#define VIRTIO_MMIO_CONFIG 0x100

#define VIRTIO_MMIO_MAGIC 0x74726976u
#define VIRTIO_MMIO_VERSION_MODERN 2u

/* 4.2.2 InterruptStatus bits. */
#define VIRTIO_MMIO_INT_VRING 0x1
#define VIRTIO_MMIO_INT_CONFIG 0x2

/* 2.7.5 The virtqueue descriptor table (split rings). */
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};
_Static_assert(sizeof(struct virtq_desc) == 16, "virtq_desc is 16 bytes (2.7.5)");

/* 2.7.6 The available ring: le16 flags; le16 idx; le16 ring[size];
 * le16 used_event (only with VIRTIO_F_EVENT_IDX). */
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_AVAIL_FLAGS_OFF 0
#define VIRTQ_AVAIL_IDX_OFF 2
#define VIRTQ_AVAIL_RING_OFF 4

/* 2.7.8 The used ring: le16 flags; le16 idx; struct virtq_used_elem
 * ring[size]; le16 avail_event (only with VIRTIO_F_EVENT_IDX). */
#define VIRTQ_USED_F_NO_NOTIFY 1
#define VIRTQ_USED_FLAGS_OFF 0
#define VIRTQ_USED_IDX_OFF 2
#define VIRTQ_USED_RING_OFF 4

struct virtq_used_elem {
	uint32_t id; /* le32, the head of the chain (2.7.8: "index of start of used descriptor chain") */
	uint32_t len; /* le32, bytes written into the device-writable part */
};
_Static_assert(sizeof(struct virtq_used_elem) == 8, "virtq_used_elem is 8 bytes (2.7.8)");

/* 2.7.1 Alignment requirements (split rings): descriptor table 16, available
 * ring 2, used ring 4. 2.7: the queue size of a split ring is a power of 2,
 * at most 32768. */
#define VIRTQ_DESC_ALIGN 16
#define VIRTQ_AVAIL_ALIGN 2
#define VIRTQ_USED_ALIGN 4
#define VIRTQ_SPEC_MAX_SIZE 32768

/* 5.2 Block device. */
#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_GEOMETRY 4
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_TOPOLOGY 10
#define VIRTIO_BLK_F_CONFIG_WCE 11
#define VIRTIO_BLK_F_MQ 12
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_GET_LIFETIME 10
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_T_SECURE_ERASE 14

#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_SECTOR_SIZE 512u
#define VIRTIO_BLK_SECTOR_SHIFT 9
#define VIRTIO_BLK_ID_BYTES 20u

/* 5.2.6 Request header: le32 type; le32 reserved; le64 sector. */
struct virtio_blk_outhdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};
_Static_assert(sizeof(struct virtio_blk_outhdr) == 16, "blk header is 16 bytes (5.2.6)");

/* 5.2.6 Discard / write-zeroes segment. */
#define VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP 1u
struct virtio_blk_discard_write_zeroes {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};
_Static_assert(sizeof(struct virtio_blk_discard_write_zeroes) == 16, "discard segment is 16 bytes");

/* 5.2.4 Device configuration layout, up to write_zeroes_may_unmap. */
struct virtio_blk_config {
	uint64_t capacity;
	uint32_t size_max;
	uint32_t seg_max;
	struct {
		uint16_t cylinders;
		uint8_t heads;
		uint8_t sectors;
	} geometry;
	uint32_t blk_size;
	struct {
		uint8_t physical_block_exp;
		uint8_t alignment_offset;
		uint16_t min_io_size;
		uint32_t opt_io_size;
	} topology;
	uint8_t writeback;
	uint8_t unused0;
	uint16_t num_queues;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap;
	uint8_t unused1[3];
};
/* The struct is padded to 64 bytes by C alignment; the guest sees 60. */
#define VIRTIO_BLK_CONFIG_SIZE 60u
_Static_assert(offsetof(struct virtio_blk_config, blk_size) == 20, "virtio_blk_config layout (5.2.4)");
_Static_assert(offsetof(struct virtio_blk_config, writeback) == 32, "virtio_blk_config layout (5.2.4)");
_Static_assert(offsetof(struct virtio_blk_config, max_discard_sectors) == 36,
	       "virtio_blk_config layout (5.2.4)");
_Static_assert(offsetof(struct virtio_blk_config, write_zeroes_may_unmap) == 56,
	       "virtio_blk_config layout (5.2.4)");

/* 5.10 Socket device (virtio-vsock). Queues: rx 0, tx 1, event 2. */
#define VIRTIO_VSOCK_F_STREAM 0
#define VIRTIO_VSOCK_F_SEQPACKET 1

#define VIRTIO_VSOCK_QUEUE_RX 0
#define VIRTIO_VSOCK_QUEUE_TX 1
#define VIRTIO_VSOCK_QUEUE_EVENT 2

/* 5.10.6: well-known CIDs. */
#define VIRTIO_VSOCK_CID_HOST 2

#define VIRTIO_VSOCK_TYPE_STREAM 1
#define VIRTIO_VSOCK_TYPE_SEQPACKET 2

#define VIRTIO_VSOCK_OP_INVALID 0
#define VIRTIO_VSOCK_OP_REQUEST 1
#define VIRTIO_VSOCK_OP_RESPONSE 2
#define VIRTIO_VSOCK_OP_RST 3
#define VIRTIO_VSOCK_OP_SHUTDOWN 4
#define VIRTIO_VSOCK_OP_RW 5
#define VIRTIO_VSOCK_OP_CREDIT_UPDATE 6
#define VIRTIO_VSOCK_OP_CREDIT_REQUEST 7

/* 5.10.6.4.1 SHUTDOWN flags: the sender will receive / send no more. */
#define VIRTIO_VSOCK_SHUTDOWN_F_RCV 1u
#define VIRTIO_VSOCK_SHUTDOWN_F_SEND 2u

/* 5.10.6.5: event ids. */
#define VIRTIO_VSOCK_EVENT_TRANSPORT_RESET 0u

/* 5.10.4 Device configuration layout. */
struct virtio_vsock_config {
	uint64_t guest_cid; /* le64; only the low 32 bits are used (5.10.4) */
};
#define VIRTIO_VSOCK_CONFIG_SIZE 8u

/* 5.10.6 The packet header that precedes every payload on rx and tx. */
struct virtio_vsock_hdr {
	uint64_t src_cid;
	uint64_t dst_cid;
	uint32_t src_port;
	uint32_t dst_port;
	uint32_t len;
	uint16_t type;
	uint16_t op;
	uint32_t flags;
	uint32_t buf_alloc;
	uint32_t fwd_cnt;
} __attribute__((packed));
_Static_assert(sizeof(struct virtio_vsock_hdr) == 44, "virtio_vsock_hdr is 44 bytes (5.10.6)");

/* 5.10.6.5 Event queue element. */
struct virtio_vsock_event {
	uint32_t id; /* le32, VIRTIO_VSOCK_EVENT_* */
};

#endif
