#ifndef REFINESEG_CSHIMS_H
#define REFINESEG_CSHIMS_H
// C helpers that Swift cannot express: libpng reports errors by longjmp, which must never
// cross Swift frames. Every function here does its own setjmp and returns 0 on success or
// -1 with a one-line message (libpng's own words) in `message`.
#include <stddef.h>
#include <stdint.h>

#define REFINESEG_MESSAGE_LEN 256

/// What a PNG holds (`color_type`, `bit_depth`, `interlace` as stored) and what
/// refineseg_png_decode will deliver (`out_channels` 1 or 3, `out_bit_depth` 8 or 16).
typedef struct {
    uint32_t width;
    uint32_t height;
    int color_type;
    int bit_depth;
    int interlace;
    int out_channels;
    int out_bit_depth;
    char message[REFINESEG_MESSAGE_LEN];
} refineseg_png_header;

/// Parses the chunks up to the first IDAT. Allocates nothing proportional to the image.
/// Widths/heights above max_side are refused by libpng itself (a second line of defence).
int refineseg_png_read_header(const void *data, size_t size, uint32_t max_side,
                              refineseg_png_header *header);

/// Decodes the whole image into `out` (out_count = width*height*out_channels samples,
/// row-major, channels interleaved, raw integer values). Palette images are expanded to RGB,
/// grey below 8 bits to 8 bits, alpha is dropped, 16-bit samples are returned as integers.
int refineseg_png_decode(const void *data, size_t size, uint32_t max_side,
                         uint16_t *out, size_t out_count, char *message);

/// Encodes already-packed PNG rows (`rows`: height rows of row_bytes bytes each, in PNG
/// byte order) into a PNG held in a malloc'd buffer (*out, *out_size) the caller frees with
/// refineseg_free. palette_rgb (palette_count*3 bytes) and trns may be NULL; trns is the tRNS
/// chunk body: one alpha byte per palette entry, or a 16-bit big-endian grey (2 bytes) or
/// RGB (6 bytes) colour key.
int refineseg_png_encode(const uint8_t *rows, size_t row_bytes, uint32_t width, uint32_t height,
                         int color_type, int bit_depth, int interlace,
                         const uint8_t *palette_rgb, int palette_count,
                         const uint8_t *trns, int trns_count,
                         uint8_t **out, size_t *out_size, char *message);

void refineseg_free(void *pointer);

#endif
