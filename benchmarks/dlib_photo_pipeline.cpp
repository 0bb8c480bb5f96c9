// dlib 19.24's own photo pipeline behind a C API, for benchmarks/bench_photos.py (loaded with ctypes).
//
// Per photo: mmod_human_face_detector (CNN) on the photo pyramid_up'ed `upsample` times, boxes
// mapped back with pyramid_down<2>::rect_down (as dlib's Python cnn_face_detection_model_v1);
// shape_predictor_5_face_landmarks inside each box, on the photo itself; the chip
// extract_image_chip(photo, get_face_chip_details(shape, 150, 0.25)); the ResNet's 128-d descriptor.
// This is what /work/shared/oracles/photo_oracle.cpp does, minus file I/O: the caller hands in
// decoded RGB pixels, so JPEG decoding is timed on neither side.
//
// Build: g++ -O2 -std=c++14 -shared -fPIC dlib_photo_pipeline.cpp $(pkg-config --cflags --libs dlib-1)
#include <dlib/dnn.h>
#include <dlib/image_processing.h>
#include <dlib/image_transforms.h>

#include <cstring>
#include <exception>
#include <string>
#include <vector>

namespace {

using namespace dlib;

// The detector: mmod_human_face_detector.dat's network (dlib's dnn_mmod_face_detection_ex).
template <long num_filters, typename SUBNET> using con5d = con<num_filters, 5, 5, 2, 2, SUBNET>;
template <long num_filters, typename SUBNET> using con5 = con<num_filters, 5, 5, 1, 1, SUBNET>;
template <typename SUBNET>
using downsampler = relu<affine<con5d<32, relu<affine<con5d<32, relu<affine<con5d<16, SUBNET>>>>>>>>>;
template <typename SUBNET> using rcon5 = relu<affine<con5<45, SUBNET>>>;
using detector_net = loss_mmod<con<1, 9, 9, 1, 1, rcon5<rcon5<rcon5<downsampler<
    input_rgb_image_pyramid<pyramid_down<6>>>>>>>>;

// The descriptor: dlib_face_recognition_resnet_model_v1.dat's network (dnn_face_recognition_ex).
template <template <int, template <typename> class, int, typename> class block, int N,
          template <typename> class BN, typename SUBNET>
using residual = add_prev1<block<N, BN, 1, tag1<SUBNET>>>;
template <template <int, template <typename> class, int, typename> class block, int N,
          template <typename> class BN, typename SUBNET>
using residual_down = add_prev2<avg_pool<2, 2, 2, 2, skip1<tag2<block<N, BN, 2, tag1<SUBNET>>>>>>;
template <int N, template <typename> class BN, int stride, typename SUBNET>
using block = BN<con<N, 3, 3, 1, 1, relu<BN<con<N, 3, 3, stride, stride, SUBNET>>>>>;
template <int N, typename SUBNET> using ares = relu<residual<block, N, affine, SUBNET>>;
template <int N, typename SUBNET> using ares_down = relu<residual_down<block, N, affine, SUBNET>>;
template <typename SUBNET> using alevel0 = ares_down<256, SUBNET>;
template <typename SUBNET> using alevel1 = ares<256, ares<256, ares_down<256, SUBNET>>>;
template <typename SUBNET> using alevel2 = ares<128, ares<128, ares_down<128, SUBNET>>>;
template <typename SUBNET> using alevel3 = ares<64, ares<64, ares<64, ares_down<64, SUBNET>>>>;
template <typename SUBNET> using alevel4 = ares<32, ares<32, ares<32, SUBNET>>>;
using descriptor_net = loss_metric<fc_no_bias<128, avg_pool_everything<alevel0<alevel1<alevel2<alevel3<
    alevel4<max_pool<3, 3, 2, 2, relu<affine<con<32, 7, 7, 2, 2, input_rgb_image_sized<150>>>>>>>>>>>>>;

struct Pipeline {
    detector_net detector;
    shape_predictor predictor;
    descriptor_net descriptor;
};

// Exceptions must not cross the C boundary: they become a message in the caller's buffer.
void set_error(char* error, int error_size, const char* message) {
    if (error && error_size > 0) {
        std::strncpy(error, message, static_cast<size_t>(error_size) - 1);
        error[error_size - 1] = '\0';
    }
}

// The caller's row-major uint8 RGB (rows x cols x 3) pixels as dlib's image type.
matrix<rgb_pixel> to_image(const unsigned char* rgb, long rows, long cols) {
    matrix<rgb_pixel> image(rows, cols);
    std::memcpy(&image(0, 0), rgb, static_cast<size_t>(rows * cols * 3));  // rgb_pixel is 3 packed bytes
    return image;
}

// Detections in photo pixels, most confident first (loss_mmod's order).
std::vector<mmod_rect> detect(Pipeline& p, const matrix<rgb_pixel>& photo, int upsample) {
    if (upsample == 0) return p.detector(photo);  // no copy of the photo when nothing is upsampled
    matrix<rgb_pixel> big = photo;
    pyramid_down<2> pyramid;
    for (int i = 0; i < upsample; ++i) pyramid_up(big, pyramid);
    std::vector<mmod_rect> found = p.detector(big);
    for (auto& d : found) d.rect = pyramid.rect_down(d.rect, upsample);
    return found;
}

}  // namespace

extern "C" {

// Load the three model files; NULL (and a message in `error`) when one cannot be read.
void* dlib_pipeline_load(const char* mmod, const char* sp5, const char* resnet, char* error, int error_size) {
    try {
        Pipeline* p = new Pipeline;
        try {
            deserialize(mmod) >> p->detector;
            deserialize(sp5) >> p->predictor;
            deserialize(resnet) >> p->descriptor;
        } catch (...) {
            delete p;
            throw;
        }
        return p;
    } catch (const std::exception& e) {
        set_error(error, error_size, e.what());
    } catch (...) {
        set_error(error, error_size, "unknown C++ exception");
    }
    return nullptr;
}

void dlib_pipeline_free(void* pipeline) { delete static_cast<Pipeline*>(pipeline); }

// Run the whole pipeline on one photo. Returns the number of faces found (the first `max_faces`
// of them written: boxes_out 4 longs (left, top, right, bottom; dlib's inclusive rectangle),
// confidence_out 1 float, landmarks_out 10 longs (x, y of the 5 parts), descriptors_out 128 floats
// per face), or -1 on error (message in `error`). Faces past `max_faces` are neither written nor
// aligned/described, so a caller that gets more than it allowed for must call again with room.
int dlib_pipeline_run(void* pipeline, const unsigned char* rgb, int rows, int cols, int upsample,
                      int max_faces, long* boxes_out, float* confidence_out, long* landmarks_out,
                      float* descriptors_out, char* error, int error_size) {
    try {
        Pipeline& p = *static_cast<Pipeline*>(pipeline);
        const matrix<rgb_pixel> photo = to_image(rgb, rows, cols);
        const std::vector<mmod_rect> found = detect(p, photo, upsample);
        const int n = static_cast<int>(found.size());
        if (n > max_faces) return n;
        for (int k = 0; k < n; ++k) {
            const rectangle& r = found[k].rect;
            const full_object_detection shape = p.predictor(photo, r);
            matrix<rgb_pixel> chip;
            extract_image_chip(photo, get_face_chip_details(shape, 150, 0.25), chip);
            const matrix<float, 0, 1> descriptor = p.descriptor(chip);
            const long box[4] = {r.left(), r.top(), r.right(), r.bottom()};
            std::memcpy(boxes_out + 4 * k, box, sizeof box);
            confidence_out[k] = static_cast<float>(found[k].detection_confidence);
            for (unsigned long part = 0; part < shape.num_parts() && part < 5; ++part) {
                landmarks_out[10 * k + 2 * part] = shape.part(part).x();
                landmarks_out[10 * k + 2 * part + 1] = shape.part(part).y();
            }
            for (long j = 0; j < 128; ++j) descriptors_out[128 * k + j] = descriptor(j);
        }
        return n;
    } catch (const std::exception& e) {
        set_error(error, error_size, e.what());
    } catch (...) {
        set_error(error, error_size, "unknown C++ exception");
    }
    return -1;
}

}  // extern "C"
