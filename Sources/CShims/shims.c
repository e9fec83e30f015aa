// libpng error recovery. libpng reports errors by calling the error function, which must not
// return; we copy its message and longjmp back to the setjmp in the calling shim, so a corrupt
// file becomes an error code for Swift instead of an abort. Locals assigned after a setjmp and
// used after the longjmp are volatile (C11 7.13.2.1); the writer's growing buffer lives on the heap.
#include "CShims.h"
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t position;
    char *message;
} reader_state;

typedef struct {
    uint8_t *data;
    size_t size;
    size_t capacity;
    int failed;
} writer_state;

static void copy_message(char *message, const char *text) {
    if (message == NULL) return;
    snprintf(message, REFINESEG_MESSAGE_LEN, "%s", text ? text : "unknown error");
}

static void on_error(png_structp png, png_const_charp text) {
    copy_message((char *)png_get_error_ptr(png), text);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp text) {
    (void)png; (void)text; // ancillary-chunk complaints do not change the pixels we return
}

static void read_from_memory(png_structp png, png_bytep out, size_t count) {
    reader_state *state = (reader_state *)png_get_io_ptr(png);
    if (count > state->size - state->position) png_error(png, "unexpected end of file");
    memcpy(out, state->data + state->position, count);
    state->position += count;
}

static void write_to_memory(png_structp png, png_bytep in, size_t count) {
    writer_state *state = (writer_state *)png_get_io_ptr(png);
    if (count > state->capacity - state->size) {
        size_t capacity = state->capacity ? state->capacity : 4096;
        while (count > capacity - state->size) {
            if (capacity > SIZE_MAX / 2) png_error(png, "PNG too large for memory");
            capacity *= 2;
        }
        uint8_t *grown = (uint8_t *)realloc(state->data, capacity);
        if (grown == NULL) png_error(png, "out of memory");
        state->data = grown;
        state->capacity = capacity;
    }
    memcpy(state->data + state->size, in, count);
    state->size += count;
}

static void flush_nothing(png_structp png) { (void)png; }

/// Sets up transforms and runs png_read_update_info; fills `header`. Must be called after setjmp.
static void read_info(png_structp png, png_infop info, uint32_t max_side, refineseg_png_header *header) {
    png_set_user_limits(png, max_side, max_side);
    png_read_info(png, info);
    header->width = png_get_image_width(png, info);
    header->height = png_get_image_height(png, info);
    header->color_type = png_get_color_type(png, info);
    header->bit_depth = png_get_bit_depth(png, info);
    header->interlace = png_get_interlace_type(png, info);
    if (header->color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (header->color_type == PNG_COLOR_TYPE_GRAY && header->bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if ((header->color_type & PNG_COLOR_MASK_ALPHA) != 0 || header->color_type == PNG_COLOR_TYPE_PALETTE)
        png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    header->out_channels = png_get_channels(png, info);
    header->out_bit_depth = png_get_bit_depth(png, info);
}

static int begin_read(png_structp *png, png_infop *info, reader_state *state, char *message) {
    *png = png_create_read_struct(PNG_LIBPNG_VER_STRING, message, on_error, on_warning);
    if (*png == NULL) { copy_message(message, "cannot create the libpng read structure"); return -1; }
    *info = png_create_info_struct(*png);
    if (*info == NULL) {
        png_destroy_read_struct(png, NULL, NULL);
        copy_message(message, "cannot create the libpng info structure");
        return -1;
    }
    png_set_read_fn(*png, state, read_from_memory);
    return 0;
}

int refineseg_png_read_header(const void *data, size_t size, uint32_t max_side, refineseg_png_header *header) {
    memset(header, 0, sizeof *header);
    reader_state state = { (const uint8_t *)data, size, 0, header->message };
    png_structp png; png_infop info;
    if (begin_read(&png, &info, &state, header->message) != 0) return -1;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        return -1;
    }
    read_info(png, info, max_side, header);
    png_destroy_read_struct(&png, &info, NULL);
    return 0;
}

int refineseg_png_decode(const void *data, size_t size, uint32_t max_side,
                         uint16_t *out, size_t out_count, char *message) {
    reader_state state = { (const uint8_t *)data, size, 0, message };
    png_structp png; png_infop info;
    png_bytep *volatile rows = NULL;
    refineseg_png_header header;
    memset(&header, 0, sizeof header);
    if (begin_read(&png, &info, &state, message) != 0) return -1;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(rows);
        return -1;
    }
    read_info(png, info, max_side, &header);
    size_t samples_per_row = (size_t)header.width * (size_t)header.out_channels;
    size_t bytes_per_sample = header.out_bit_depth == 16 ? 2 : 1;
    if ((header.out_bit_depth != 8 && header.out_bit_depth != 16) ||
        (header.out_channels != 1 && header.out_channels != 3))
        png_error(png, "unexpected layout after transforms");
    if (samples_per_row * header.height != out_count)
        png_error(png, "image size changed between header and decode");
    if (png_get_rowbytes(png, info) != samples_per_row * bytes_per_sample)
        png_error(png, "row size does not match the image layout");
    // Rows are decoded into the front of each row's slot in `out` (8-bit: first half of the
    // slot) and widened in place afterwards, so no second image-sized buffer is needed.
    rows = (png_bytep *)malloc(sizeof(png_bytep) * (header.height ? header.height : 1));
    if (rows == NULL) png_error(png, "out of memory");
    for (uint32_t y = 0; y < header.height; y++)
        rows[y] = (png_bytep)(out + (size_t)y * samples_per_row);
    png_read_image(png, rows);
    png_read_end(png, NULL);
    for (uint32_t y = 0; y < header.height; y++) {
        uint16_t *row = out + (size_t)y * samples_per_row;
        const uint8_t *bytes = (const uint8_t *)row;
        if (bytes_per_sample == 2) {
            for (size_t i = 0; i < samples_per_row; i++)
                row[i] = (uint16_t)((bytes[2 * i] << 8) | bytes[2 * i + 1]);
        } else {
            // Backwards: sample i's new slot (bytes 2i, 2i+1) never overlaps an unread byte j < i.
            for (size_t i = samples_per_row; i-- > 0;) row[i] = bytes[i];
        }
    }
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    return 0;
}

int refineseg_png_encode(const uint8_t *rows, size_t row_bytes, uint32_t width, uint32_t height,
                         int color_type, int bit_depth, int interlace,
                         const uint8_t *palette_rgb, int palette_count,
                         const uint8_t *trns, int trns_count,
                         uint8_t **out, size_t *out_size, char *message) {
    *out = NULL;
    *out_size = 0;
    writer_state *state = (writer_state *)calloc(1, sizeof(writer_state));
    if (state == NULL) { copy_message(message, "out of memory"); return -1; }
    png_bytep *volatile row_pointers = NULL;
    png_colorp volatile palette = NULL;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, message, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (info == NULL) {
        if (png) png_destroy_write_struct(&png, NULL);
        free(state);
        copy_message(message, "cannot create the libpng write structure");
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(row_pointers);
        free(palette);
        free(state->data);
        free(state);
        return -1;
    }
    png_set_write_fn(png, state, write_to_memory, flush_nothing);
    png_set_IHDR(png, info, width, height, bit_depth, color_type,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (palette_rgb != NULL && palette_count > 0) {
        palette = (png_colorp)malloc(sizeof(png_color) * (size_t)palette_count);
        if (palette == NULL) png_error(png, "out of memory");
        for (int i = 0; i < palette_count; i++) {
            palette[i].red = palette_rgb[3 * i];
            palette[i].green = palette_rgb[3 * i + 1];
            palette[i].blue = palette_rgb[3 * i + 2];
        }
        png_set_PLTE(png, info, palette, palette_count);
    }
    if (trns != NULL && trns_count > 0) {
        if (color_type == PNG_COLOR_TYPE_PALETTE) {
            png_set_tRNS(png, info, trns, trns_count, NULL);
        } else {
            // Grey or RGB: the tRNS body is one 16-bit big-endian grey or red, green, blue key.
            png_color_16 key;
            memset(&key, 0, sizeof key);
            int wanted = color_type == PNG_COLOR_TYPE_GRAY ? 2 : 6;
            if (trns_count != wanted) png_error(png, "tRNS body has the wrong size for this colour type");
            if (color_type == PNG_COLOR_TYPE_GRAY) {
                key.gray = (png_uint_16)(trns[0] << 8 | trns[1]);
            } else {
                key.red = (png_uint_16)(trns[0] << 8 | trns[1]);
                key.green = (png_uint_16)(trns[2] << 8 | trns[3]);
                key.blue = (png_uint_16)(trns[4] << 8 | trns[5]);
            }
            png_set_tRNS(png, info, NULL, 1, &key);
        }
    }
    if (row_bytes != png_get_rowbytes(png, info)) png_error(png, "row size does not match the image layout");
    row_pointers = (png_bytep *)malloc(sizeof(png_bytep) * (height ? height : 1));
    if (row_pointers == NULL) png_error(png, "out of memory");
    for (uint32_t y = 0; y < height; y++) row_pointers[y] = (png_bytep)(rows + (size_t)y * row_bytes);
    png_write_info(png, info);
    png_write_image(png, row_pointers);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(row_pointers);
    free(palette);
    *out = state->data;
    *out_size = state->size;
    free(state);
    return 0;
}

void refineseg_free(void *pointer) { free(pointer); }
